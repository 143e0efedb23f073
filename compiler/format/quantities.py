"""Durations and sizes as users write them, parsed the same way by compiler and executor.

``extsvc run --stop-timeout 10s``, ``x-extsvc: {startTimeout: 2m}`` and a facts
file's ``until: 5m`` accept one syntax and one range, so the parser lives here, in
the shared contract. ``extsvc logs --since 2 days ago`` reads its span with the same
parser and systemd.time(7)'s spellings of the units, days and weeks too
(``parse_span``; the words ``ago``, ``today`` are executor.logs.logfile's): a label
for a moment, not a timer, so it has no bound.
"""

from __future__ import annotations

import re

from extsvc.compiler.format.diagnostics import short_repr
from extsvc.compiler.format.ranges import MAX_MEMORY_BYTES, MAX_SECONDS, MAX_SECONDS_TEXT

# A duration's parts: a number and its unit, back to back (``1m30s``).
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")
# A span as systemd.time(7) spells it: the same units under their other names, days and
# weeks, spaces around the parts (lower case: "m" is minutes; no months or years, whose
# length is a convention).
SPAN_UNITS = {
    **dict.fromkeys(("ms", "msec"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "week", "weeks"), 604800.0),
}
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")

# Kubernetes quantity suffixes (what a Talos user writes in a pod spec): the binary
# ones are powers of 1024, the decimal ones powers of 1000; no suffix means bytes.
_SIZE_UNITS = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([kKMGT]i?|)")
SIZE_FORMS = "write e.g. 512Mi, 1Gi, 1G or a number of bytes"
# The longest fraction a unit can make whole: 2**-40 Ti (one byte) has 40 decimals.
_MAX_FRACTION_DIGITS = 40


def parse_duration(text: str) -> float:
    """Seconds in ``text``, from 0 to MAX_SECONDS; raises ValueError with the accepted
    forms when it is not a duration, and with the bound when it is longer.

    Every duration of every input is bounded, because each ends up on a clock: past
    about 2**24 s a float of seconds no longer moves by a nanosecond (the simulated
    boot's virtual clock stood still at `until: 5000h`), and 400 digits make inf,
    which no timer, stamp or JSON takes.
    """
    total = _seconds(text.strip(), _PART, _UNIT_SECONDS)
    if total is None:
        raise ValueError(f"invalid duration {short_repr(text)} (write e.g. 500ms, 5s, 1m, 1m30s)")
    if not total <= MAX_SECONDS:
        raise ValueError(
            f"{short_repr(text)} is more than {MAX_SECONDS_TEXT}, the most a duration may be"
        )
    return total


def parse_span(text: str) -> float | None:
    """Seconds in a time span as systemd.time(7) writes one (``90s``, ``1h30m``,
    ``2 days``, ``1h 30min``); None if ``text`` is not one. Not bounded: the caller
    clamps the moment it makes (``100000h ago`` means "everything")."""
    return _seconds(text, _SPAN_PART, SPAN_UNITS)


def _seconds(text: str, part: re.Pattern[str], units: dict[str, float]) -> float | None:
    """The one duration parser: ``text`` as ``part``s back to back, each a number and
    one of ``units``; their sum in seconds, or None when ``text`` is not that."""
    total = 0.0
    position = 0
    for match in part.finditer(text):
        if match.start() != position or match[2] not in units:
            return None
        total += float(match[1]) * units[match[2]]
        position = match.end()
    return total if position and position == len(text) else None


def parse_size(value: str | int | float) -> int:
    """Bytes in ``value`` (``512Mi``, ``1G``, ``1048576``); ValueError when it is not a size
    or is more than MAX_MEMORY_BYTES.

    A fraction of a byte is refused rather than rounded: ``0.5Ki`` is 512 bytes,
    ``1.5`` bytes is a typo. A float with a whole value (YAML ``1.0e+9``) is that
    integer, as JSON Schema counts it.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: must not be negative")
        return _at_most_max(value, value)
    text = str(value)
    match = _SIZE.fullmatch(text.strip())
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"invalid size {short_repr(text)} ({SIZE_FORMS})")
    number: str = match.group(1)
    whole, _, fraction = number.partition(".")
    whole, fraction = whole.lstrip("0"), fraction.rstrip("0")
    # Checked on the digits first: int() refuses more than 4,300 of them.
    if len(whole) > len(str(MAX_MEMORY_BYTES)):
        return _at_most_max(text, MAX_MEMORY_BYTES + 1)
    if len(fraction) > _MAX_FRACTION_DIGITS:
        raise ValueError(f"invalid size {short_repr(text)}: not a whole number of bytes")
    multiplier: int = _SIZE_UNITS[match.group(2)]
    # Exact integer arithmetic: floats would turn 0.1Gi into 107374182.40000001.
    scaled: int = int((whole + fraction) or "0") * multiplier
    divisor: int = 10 ** len(fraction)
    if scaled % divisor:
        raise ValueError(f"invalid size {short_repr(text)}: not a whole number of bytes")
    return _at_most_max(text, scaled // divisor)


def _at_most_max(value: str | int, size: int) -> int:
    """``size``, or ValueError when no memory limit can be that large."""
    if size > MAX_MEMORY_BYTES:
        from extsvc.compiler.format.schemacheck import show_value  # an error only

        shown = short_repr(value) if isinstance(value, str) else show_value(value)
        raise ValueError(
            f"{shown} is more than {MAX_MEMORY_BYTES} bytes (8 EiB), the largest memory limit"
        )
    return size
