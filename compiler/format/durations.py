"""Durations written for people: ages, grace periods, what a diff shows. Reading them
back is ``quantities.parse_duration``; this module stays apart from it (no schema, no
bounds) because `extsvc service` imports it on its quick path."""

from __future__ import annotations

import re


def format_duration(seconds: float) -> str:
    """A short human duration in Go's style, rounded like `talosctl` ages: 350ms, 12s, 2m47s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def short_duration(seconds: float) -> str:
    """Like the user wrote it: 1m, not 1m0s (zero parts dropped)."""
    text = format_duration(seconds)
    # "1h0m0s" -> "1h", "1m0s" -> "1m" in one pass (the look-behind sees the text as
    # it was); "10m" and "500ms" stay as they are.
    return re.sub(r"(?<=[hm])0[ms]", "", text)


def exact_duration(seconds: float) -> str:
    """``seconds`` to the millisecond, in a form parse_duration reads back (never an
    exponent, as ``f"{x:g}"`` writes past a million seconds): 10s, 1500ms."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
