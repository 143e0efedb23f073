"""Durations as we show ages; parsing is shared with the compiler (``format.quantities``)."""

from __future__ import annotations


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


def exact_duration(seconds: float) -> str:
    """``seconds`` to the millisecond, in a form parse_duration reads back (never an
    exponent, as ``f"{x:g}"`` writes past a million seconds): 10s, 1500ms."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
