"""The on-disk log format, and reading it without a daemon (`extsvc logs` after a crash).

Each stored line is ``<time> <stream> <text>``::

    2026-11-22T04:28:12.345Z output hello from the container
    2026-11-22T04:28:12.346Z extsvc -- ext-hello run 3 started --

``time`` is RFC 3339 in UTC with milliseconds, so comparing two stamps as
strings compares the instants: merging services and ``--since`` need no date
parsing. ``stream`` is ``output`` for a container's line, ``partial`` for a piece
of one stored before its newline came (the next output record continues it), and
``extsvc`` for the executor's own markers between runs. The container's stdout and
stderr are *one* pipe (DESIGN §6: so their relative order is kept exactly as
written), so the executor cannot tell them apart; calling such a line "stdout"
would be a lie, hence ``output``. A line written before this format (no stamp) reads as
``output`` with an empty time.

This module is imported by `extsvc logs`, whose start-up time is a budget (a
command people type): standard library only, and no asyncio.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

OUTPUT = "output"  # a container's stdout and stderr, merged in one pipe
# A piece of output whose line was not ended yet (a prompt, progress dots): the next
# output record of the service continues it. Shown with PARTIAL_MARK after it.
PARTIAL = "partial"
PARTIAL_MARK = "\\"
MARKER = "extsvc"  # the executor's run markers
LOG_SUFFIX = ".log"
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_BLOCK = 64 * 1024
# "-5m", "5m ago": that long before now.
_AGO = re.compile(r"-\s*(?P<minus>.+)|(?P<ago>.+?)\s+ago")
# The last instant an RFC 3339 stamp can say (9999-12-31T23:59:59Z): times are clamped
# to 1970 .. 9999 rather than refused, as "100000h ago" means "everything".
_LAST_STAMP = 253402300799.0
# -n/--tail beyond this is "all": the control socket's bound (executor.daemon.control.MAX_TAIL).
MAX_LINES = 10_000_000


@dataclass(frozen=True)
class LogRecord:
    time: str  # RFC 3339 UTC with milliseconds; "" for a line stored without one
    stream: str
    line: str
    service: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {
            "time": self.time or None,
            "service": self.service,
            "stream": self.stream,
            "line": self.line,
        }


def stamp(epoch: float) -> str:
    """``epoch`` as RFC 3339 UTC with milliseconds (``2026-11-22T04:28:12.345Z``)."""
    millis = int(epoch * 1000)
    seconds, ms = divmod(millis, 1000)
    return _utc_second(seconds) + f".{ms:03d}Z"


@functools.lru_cache(maxsize=8)
def _utc_second(seconds: int) -> str:
    # Every line is stamped, and a flooding service writes thousands a second: the
    # date and time of a second is formatted once (gmtime + strftime were a third of
    # the executor's cost per line).
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def encode(record: LogRecord) -> bytes:
    return f"{record.time} {record.stream} {record.line}\n".encode(errors="replace")


def decode(raw: bytes, service: str = "") -> LogRecord:
    text = raw.rstrip(b"\n").decode(errors="replace")
    head, _, rest = text.partition(" ")
    if _STAMP.match(head):
        stream, _, line = rest.partition(" ")
        return LogRecord(head, stream, line, service)
    return LogRecord("", OUTPUT, text, service)


def run_started(service_id: str, run: int) -> str:
    return f"-- {service_id} run {run} started --"


def run_failed_to_start(service_id: str, run: int, cause: str) -> str:
    return f"-- {service_id} run {run} failed to start: {cause} --"


def run_ended(exit_code: int | None, stopped: bool = False) -> str:
    if exit_code is None:
        return "-- exited (exit code unknown) --"
    how = "stopped, " if stopped else ""
    return f"-- {how}exited with code {exit_code} --"


def log_path(log_dir: Path, service_id: str) -> Path:
    return log_dir / f"{service_id}{LOG_SUFFIX}"


def rotated_files(path: Path, backups: int) -> list[Path]:
    """``path`` and its rotated copies, oldest first (``x.log.2``, ``x.log.1``, ``x.log``)."""
    older = [path.with_name(f"{path.name}.{i}") for i in range(backups, 0, -1)]
    return [*older, path]


def _backups_on_disk(path: Path) -> list[Path]:
    """Rotated copies that exist, oldest first, whatever ``backups`` the daemon used."""
    found: list[tuple[int, Path]] = []
    prefix = path.name + "."
    try:
        entries = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.startswith(prefix) and entry[len(prefix) :].isdigit():
            found.append((int(entry[len(prefix) :]), path.parent / entry))
    return [p for _, p in sorted(found, reverse=True)]


def service_files(log_dir: Path, service_id: str) -> list[Path]:
    path = log_path(log_dir, service_id)
    return [*_backups_on_disk(path), path]


def services_in(log_dir: Path) -> list[str]:
    """Every service id with a log file in ``log_dir``."""
    try:
        entries = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted(e[: -len(LOG_SUFFIX)] for e in entries if e.endswith(LOG_SUFFIX))


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The lines of ``path``, last first, reading only as many blocks as are consumed."""
    # A file rotated away or never written has no lines.
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        rest = b""
        while position > 0:
            size = min(_BLOCK, position)
            position -= size
            handle.seek(position)
            chunk = handle.read(size) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line:
                    yield line
        if rest:
            yield rest


def _lines_forwards(path: Path) -> Iterator[bytes]:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        for raw in handle:
            if raw.strip(b"\n"):
                yield raw


def read_service(
    files: list[Path], service: str, tail: int | None = None, since: str = "", until: str = ""
) -> list[LogRecord]:
    """The records of one service (``files`` oldest first): the last ``tail`` of those
    stamped from ``since`` to ``until`` (RFC 3339 UTC stamps, both included; "" for no
    bound). ``tail=None`` means all."""
    if tail == 0:
        return []
    if tail is None:
        records = (decode(raw, service) for path in files for raw in _lines_forwards(path))
        return [r for r in records if r.time >= since and (not until or r.time <= until)]
    newest_first: list[LogRecord] = []
    for path in reversed(files):
        for raw in _lines_backwards(path):
            record = decode(raw, service)
            if since and record.time < since:
                return newest_first[::-1]
            if until and record.time > until:
                continue
            newest_first.append(record)
            if len(newest_first) == tail:
                return newest_first[::-1]
    return newest_first[::-1]


def merge(per_service: Iterable[list[LogRecord]], tail: int | None) -> list[LogRecord]:
    """Records of several services interleaved by time (stable within each service)."""
    merged: Iterable[LogRecord] = heapq.merge(*per_service, key=lambda r: r.time)
    if tail is None:
        return list(merged)
    return list(deque(merged, maxlen=tail))


def parse_time(text: str, option: str = "--since", now: float | None = None) -> str:
    """A time as `extsvc logs --since/--until` take it -> a UTC stamp; ValueError (one line,
    the value cut short) otherwise.

    That long ago: ``5m``, ``-5m``, ``5m ago``, ``1h 30min ago``, ``-2d`` (journalctl's
    and ``date -d``'s spellings, systemd.time(7)'s units up to weeks); ``now``,
    ``today``, ``yesterday`` (local midnight); or a time: RFC 3339
    (``2026-01-02T15:04:05Z``), or a local date and time (``2026-01-02``,
    ``2026-01-02 15:04``, as ``date`` prints them).
    """
    moment = time.time() if now is None else now
    word = text.strip().lower()
    if word == "now":
        return stamp(moment)
    if word in ("today", "yesterday"):
        local = time.localtime(moment)
        day = local.tm_mday - (word == "yesterday")
        # mktime normalises day 0 to the month before, and finds the offset (DST) itself.
        return stamp(time.mktime((local.tm_year, local.tm_mon, day, 0, 0, 0, 0, 0, -1)))
    from extsvc.compiler.format.quantities import parse_span  # --since/--until only

    relative = _AGO.fullmatch(word)
    ago = parse_span(relative.group("minus") or relative.group("ago") if relative else word)
    if ago is not None:
        return stamp(min(max(moment - ago, 0.0), _LAST_STAMP))
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        from extsvc.compiler.format.diagnostics import short_repr

        raise ValueError(
            f"invalid {option} {short_repr(text)}: write a time ago (5m, -5m, 2 days ago), "
            "now, today, yesterday, or a time (2026-01-02T15:04:05Z, '2026-01-02 15:04')"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a time without offset is local time, as `date` prints it
    return stamp(min(max(parsed.astimezone(UTC).timestamp(), 0.0), _LAST_STAMP))


def parse_count(text: str, option: str = "--tail") -> int | None:
    """``-n/--tail``: a number of lines; None for all (``-1``, ``all``, or more lines
    than any log keeps); ValueError (one line, the value cut short) otherwise."""
    digits = text.strip().lower()
    if digits in ("-1", "all"):
        return None
    if not digits.isdigit():
        from extsvc.compiler.format.diagnostics import short_repr

        raise ValueError(
            f"invalid {option} {short_repr(text)}: write a number of lines, or all (-1)"
        )
    # Beyond this no log holds as many lines: all of them (and no 5,000-digit int()).
    return None if len(digits) > len(str(MAX_LINES)) or int(digits) > MAX_LINES else int(digits)


def shown_line(record: LogRecord) -> str:
    """The record's text as people read it (logs, console): a partial piece ends with
    PARTIAL_MARK, as a shell's continued line (its next line continues it)."""
    return record.line + PARTIAL_MARK if record.stream == PARTIAL else record.line


def format_record(record: LogRecord, timestamps: bool, prefix: bool) -> str:
    parts = []
    if timestamps:
        parts.append(record.time or "-")
    if prefix:
        parts.append(f"{record.service}:")
    parts.append(shown_line(record))
    return " ".join(parts)
