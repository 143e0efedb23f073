"""Service logs: one size-rotated file per service, live followers, and the console.

Each line a container writes goes, in order, to ``<log-dir>/ext-<name>.log``
(stamped with its time and stream, see ``logfiles``),
to every follower (`extsvc logs -f` through the control socket, so following
survives rotation), and, for ``logToConsole`` services, to the console.
A file rotates at ``max_bytes`` keeping ``backups`` older files, so a service
never holds more than ``(backups + 1) * max_bytes`` on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import IO, Protocol

from extsvc.executor.logfiles import (
    MARKER,
    OUTPUT,
    LogRecord,
    encode,
    read_service,
    rotated_files,
    stamp,
)

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_BACKUPS = 2
# A follower that cannot keep up loses lines rather than growing the daemon's memory.
FOLLOWER_QUEUE_LINES = 10_000


class ConsoleKind(Enum):
    STDOUT = "stdout"
    KMSG = "kmsg"
    NONE = "none"


class Console(Protocol):
    def write(self, service_id: str, line: str) -> None: ...


class NoConsole:
    def write(self, service_id: str, line: str) -> None:
        pass


class StdoutConsole:
    """``ext-name: line`` on the executor's standard output."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, service_id: str, line: str) -> None:
        stream = self._stream or sys.stdout
        # A closed terminal (EIO) or reader (EPIPE) loses console lines, not the service.
        with contextlib.suppress(OSError):
            stream.write(f"{service_id}: {line}\n")
            stream.flush()


class KmsgConsole:
    """The kernel log buffer, as Talos does: one record ``<6>ext-name: line`` per line."""

    def __init__(self, path: Path = Path("/dev/kmsg")) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)

    def write(self, service_id: str, line: str) -> None:
        # A full or rate-limited kmsg must not stall the daemon: drop the record.
        with contextlib.suppress(OSError):
            os.write(self._fd, f"<6>{service_id}: {line}\n".encode()[:1000])


def make_console(kind: ConsoleKind) -> Console:
    if kind is ConsoleKind.STDOUT:
        return StdoutConsole()
    if kind is ConsoleKind.KMSG:
        return KmsgConsole()
    return NoConsole()


class RotatingFile:
    """Appends lines; renames ``x.log`` -> ``x.log.1`` -> ... when it would exceed max_bytes."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self.backups, 0, -1):
            older = self.rotated(index)
            newer = self.rotated(index - 1)
            if newer.exists():
                if index == self.backups:
                    older.unlink(missing_ok=True)
                newer.rename(older)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        self._file = self.path.open("ab")
        self._size = 0

    def rotated(self, index: int) -> Path:
        return self.path if index == 0 else self.path.with_name(f"{self.path.name}.{index}")

    def close(self) -> None:
        self._file.close()


class ServiceLog:
    """Where one service's output goes."""

    def __init__(
        self,
        service_id: str,
        log_dir: Path,
        console: Console | None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
    ) -> None:
        self.service_id = service_id
        self._file = RotatingFile(log_dir / f"{service_id}.log", max_bytes, backups)
        self._console = console
        self._followers: set[asyncio.Queue[LogRecord | None]] = set()
        self.last_line = ""

    def write(self, line: str, at: float | None = None) -> None:
        """A line of the container's output (its stdout and stderr share one pipe), read at
        ``at`` (seconds since the epoch; now by default)."""
        if line.strip():
            self.last_line = line
        if self._console is not None:
            self._console.write(self.service_id, line)
        moment = time.time() if at is None else at
        self._store(LogRecord(stamp(moment), OUTPUT, line, self.service_id))

    def mark(self, text: str) -> None:
        """The executor's own line between runs (``-- ext-x run 3 started --``)."""
        self._store(LogRecord(stamp(time.time()), MARKER, text, self.service_id))

    def _store(self, record: LogRecord) -> None:
        self._file.write(encode(record))
        for queue in self._followers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(record)

    def files(self) -> list[Path]:
        return rotated_files(self._file.path, self._file.backups)

    def tail(self, count: int | None, since: str = "") -> list[LogRecord]:
        return read_service(self.files(), self.service_id, count, since)

    def follow(
        self, queue: asyncio.Queue[LogRecord | None] | None = None
    ) -> asyncio.Queue[LogRecord | None]:
        """A queue (``queue``, or a new one) of every record written from now on; None marks
        the log's end. One queue may follow several logs (`extsvc logs -f` of all services)."""
        if queue is None:
            queue = asyncio.Queue(FOLLOWER_QUEUE_LINES)
        self._followers.add(queue)
        return queue

    def unfollow(self, queue: asyncio.Queue[LogRecord | None]) -> None:
        self._followers.discard(queue)

    def close(self) -> None:
        for queue in self._followers:
            if queue.full():  # the end must arrive even to a follower that fell behind
                queue.get_nowait()
            queue.put_nowait(None)
        self._followers.clear()
        self._file.close()
