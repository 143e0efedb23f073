"""Durations as users write them (``500ms``, ``5s``, ``1m``, ``1m30s``) and as we show ages."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with the accepted forms when it is not one."""
    compact = text.strip()
    position = 0
    total = 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not compact or position != len(compact):
        raise ValueError(f"invalid duration {text!r} (write e.g. 500ms, 5s, 1m, 1m30s)")
    return total


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
