"""The on-disk log format, and reading it without a daemon (`extsvc logs` after a crash).

Each stored line is ``<time> <stream> <text>``::

    2026-11-22T04:28:12.345Z output hello from the container
    2026-11-22T04:28:12.346Z extsvc -- ext-hello run 3 started --

``time`` is RFC 3339 in UTC with milliseconds, so comparing two stamps as
strings compares the instants: merging services and ``--since`` need no date
parsing. ``stream`` is ``output`` for a container's line and ``extsvc`` for the
executor's own markers between runs. The container's stdout and stderr are *one*
pipe (DESIGN §6: so their relative order is kept exactly as written), so the
executor cannot tell them apart; calling such a line "stdout" would be a lie,
hence ``output``. A line written before this format (no stamp) reads as
``output`` with an empty time.

This module is imported by `extsvc logs`, whose start-up time is a budget
(issue 8): standard library only, and no asyncio.
"""

from __future__ import annotations

import contextlib
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
MARKER = "extsvc"  # the executor's run markers
LOG_SUFFIX = ".log"
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_BLOCK = 64 * 1024


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
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


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
    files: list[Path], service: str, tail: int | None = None, since: str = ""
) -> list[LogRecord]:
    """The records of one service (``files`` oldest first): the last ``tail`` at or after
    ``since`` (an RFC 3339 UTC stamp; "" for no bound). ``tail=None`` means all."""
    if tail == 0:
        return []
    if tail is None:
        records = (decode(raw, service) for path in files for raw in _lines_forwards(path))
        return [r for r in records if r.time >= since]
    newest_first: list[LogRecord] = []
    for path in reversed(files):
        for raw in _lines_backwards(path):
            record = decode(raw, service)
            if since and record.time < since:
                return newest_first[::-1]
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


def parse_since(text: str, now: float | None = None) -> str:
    """``10m``/``1h30m`` (ago) or an RFC 3339 time -> a UTC stamp; ValueError otherwise."""
    from extsvc.compiler.format.quantities import parse_duration

    moment = time.time() if now is None else now
    try:
        return stamp(moment - parse_duration(text))
    except ValueError:
        pass
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid --since {text!r}: write a duration (10m, 1h30m) or an RFC 3339 time "
            "(2026-01-02T15:04:05Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a time without offset is local time, as `date` prints it
    return stamp(parsed.astimezone(UTC).timestamp())


def format_record(record: LogRecord, timestamps: bool, prefix: bool) -> str:
    parts = []
    if timestamps:
        parts.append(record.time or "-")
    if prefix:
        parts.append(f"{record.service}:")
    parts.append(record.line)
    return " ".join(parts)
