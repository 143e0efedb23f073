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
import errno
import itertools
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from extsvc.executor.logs.journal import Journal
from extsvc.executor.logs.logfile import (
    MARKER,
    OUTPUT,
    PARTIAL,
    LogRecord,
    encode,
    log_path,
    read_service,
    rotated_files,
    run_started,
    shown_line,
    stamp,
)
from extsvc.executor.logs.sinks import NonBlockingWriter, RecordSink, dropped_message
from extsvc.executor.options import DEFAULT_LOG_ROTATION, ConsoleKind

DEFAULT_MAX_BYTES = DEFAULT_LOG_ROTATION.max_bytes
DEFAULT_BACKUPS = DEFAULT_LOG_ROTATION.backups
# A follower that cannot keep up loses lines rather than growing the daemon's memory:
# at most this many bytes of lines wait for one `logs -f` client.
FOLLOWER_BUFFER_BYTES = 1024 * 1024
# Per record on top of its line (the record object, its time and names).
RECORD_OVERHEAD = 200
# After a failed write (disk full), the log file is tried again this often.
LOG_RETRY_SECONDS = 2.0
# A longer /dev/kmsg record is refused whole (EINVAL): over 1,024 bytes on Linux 6.x,
# over 1,024 minus a 32- or 48-byte prefix on 5.x and older. Records are cut to the
# smallest, so no kernel refuses a line for its length.
KMSG_RECORD_BYTES = 976


class Console(Protocol):
    def write(self, service_id: str, line: str) -> None: ...

    def close(self) -> None: ...

    @property
    def dropped_total(self) -> int:
        """Lines dropped since the start (extsvc_sink_dropped_lines_total)."""
        ...


class NoConsole:
    dropped_total = 0

    def write(self, service_id: str, line: str) -> None:
        pass

    def close(self) -> None:
        pass


class StdoutConsole:
    """``ext-name: line`` on the executor's standard output.

    Through a NonBlockingWriter: a console nobody reads (a stuck serial console, a
    full pipe) loses console lines, counted and reported, never stops the executor.
    """

    def __init__(
        self, stream: IO[str] | None = None, on_dropped: Callable[[str], None] | None = None
    ) -> None:
        self._stream = stream
        self._on_dropped = on_dropped
        self._writer: NonBlockingWriter | None = None

    def write(self, service_id: str, line: str) -> None:
        if self._stream is not None:
            self._stream.write(f"{service_id}: {line}\n")
            return
        if self._writer is None:
            # Made on the first line, on the running loop (it watches stdout there).
            self._writer = NonBlockingWriter(
                sys.stdout.fileno(), "console", on_dropped=self._on_dropped
            )
        self._writer.write(f"{service_id}: {line}\n".encode(errors="replace"))

    @property
    def dropped_total(self) -> int:
        return self._writer.dropped_total if self._writer is not None else 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class KmsgConsole(RecordSink):
    """The kernel log buffer, as Talos does: one record ``<6>ext-name: line`` per line.

    Opened O_NONBLOCK, so the kernel never makes the executor wait: a record it
    refuses (EAGAIN, ENOSPC, EINVAL, ...) is dropped and counted, and reported once
    it takes records again (``extsvc: … 12 lines dropped: kmsg not accepting
    (EAGAIN)``; executor.logs.sinks.RecordSink). What the kernel's own rate limit drops
    (``printk.devkmsg=ratelimit``, the default) it reports as written: that cannot
    be counted here (the kernel logs its own "callbacks suppressed").
    """

    def __init__(
        self, path: Path = Path("/dev/kmsg"), on_dropped: Callable[[str], None] | None = None
    ) -> None:
        super().__init__("kmsg", on_dropped)
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK)

    def write(self, service_id: str, line: str) -> None:
        self.put(f"<6>{service_id}: {line}\n".encode(errors="replace"))

    def _put(self, record: bytes) -> str | None:
        """One record, cut to what every kernel takes; the errno's name if refused."""
        try:
            os.write(self._fd, record[:KMSG_RECORD_BYTES])
        except OSError as error:
            return errno.errorcode.get(error.errno or 0, str(error.errno))
        return None

    def _notice(self, message: str) -> bytes:
        return f"<6>extsvc: {message}\n".encode()

    def close(self) -> None:
        self.close_report()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def make_console(kind: ConsoleKind, on_dropped: Callable[[str], None] | None = None) -> Console:
    if kind is ConsoleKind.STDOUT:
        return StdoutConsole(on_dropped=on_dropped)
    if kind is ConsoleKind.KMSG:
        return KmsgConsole(on_dropped=on_dropped)
    return NoConsole()


class RotatingFile:
    """Appends lines; renames ``x.log`` -> ``x.log.1`` -> ... when it would exceed max_bytes."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a failed write (disk full) leaves nothing queued to be written twice.
        self._file: BinaryIO | None = path.open("ab", buffering=0)
        self._size = self._file.tell()
        # A write that failed half-way left a partial line: the next one starts afresh.
        self._partial = False

    def write(self, data: bytes) -> None:
        """Append ``data``; raises OSError (ENOSPC, EIO) with the file still usable."""
        if self._file is None:
            self._file = self.path.open("ab", buffering=0)  # a reopen that failed before
            self._size = self._file.tell()
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            self._file = self.path.open("ab", buffering=0)
        if self._partial:
            data = b"\n" + data
        view = memoryview(data)
        while view:
            try:
                written = self._file.write(view) or 0
            except OSError:
                # Part of this line is in the file: the next one must start a new line.
                self._partial = self._partial or len(view) != len(data)
                raise
            self._size += written
            view = view[written:]
        self._partial = False

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        self._size = 0
        self._partial = False
        files = rotated_files(self.path, self.backups)  # oldest first, ``x.log`` last
        for older, newer in itertools.pairwise(files):
            if newer.exists():
                newer.rename(older)  # replacing the oldest
        if self.backups == 0:
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class FollowerQueue:
    """What waits for one `logs -f` client: at most ``max_bytes`` of records; beyond
    that, records are dropped and counted (a client that does not read cannot grow the
    executor's memory). The end of a log (None) is never dropped."""

    def __init__(self, max_bytes: int = FOLLOWER_BUFFER_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: deque[LogRecord | None] = deque()
        self._bytes = 0
        self.dropped = 0
        self._ready = asyncio.Event()

    @staticmethod
    def _size(record: LogRecord) -> int:
        return len(record.line) + RECORD_OVERHEAD

    def put_nowait(self, record: LogRecord | None) -> None:
        if record is not None:
            if self._bytes + self._size(record) > self.max_bytes:
                self.dropped += 1
                return
            self._bytes += self._size(record)
        self._items.append(record)
        self._ready.set()

    def get_nowait(self) -> LogRecord | None:
        """The next record; raises asyncio.QueueEmpty if none waits."""
        if not self._items:
            raise asyncio.QueueEmpty
        record = self._items.popleft()
        if record is not None:
            self._bytes -= self._size(record)
        return record

    async def get(self) -> LogRecord | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    def take_dropped(self) -> int:
        count, self.dropped = self.dropped, 0
        return count


class ServiceLog:
    """Where one service's output goes: its log file (unless ``files`` is off), its
    followers, the console (logToConsole), journald (``journal``, executor.logs.journal).

    A log file that cannot be written (disk full) never stops the service: the
    lines are dropped and counted, ``on_problem`` says so once (with the errno),
    the file is tried again every LOG_RETRY_SECONDS while lines come, and once it
    takes lines again ``on_problem`` says how many were lost.
    """

    def __init__(
        self,
        service_id: str,
        log_dir: Path,
        console: Console | None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        journal: Journal | None = None,
        files: bool = True,
    ) -> None:
        self.service_id = service_id
        self._path = log_path(log_dir, service_id)
        self._backups = backups
        self._file = RotatingFile(self._path, max_bytes, backups) if files else None
        self._console = console
        self._journal = journal
        # The run the lines belong to, and its container's init (journald's fields).
        self.run = 0
        self.pid: int | None = None
        self._followers: set[FollowerQueue] = set()
        self.last_line = ""
        # Told about the log file failing and recovering (the runner makes it an event).
        self.on_problem: Callable[[str], None] | None = None
        self._write_error: str | None = None
        self._retry_at = 0.0
        self.dropped_since_error = 0
        self.dropped_total = 0

    def write(self, line: str, at: float | None = None, partial: bool = False) -> None:
        """A line of the container's output (its stdout and stderr share one pipe), read at
        ``at`` (seconds since the epoch; now by default); ``partial``: a piece of a line
        not ended yet, which the next line continues."""
        if line.strip():
            self.last_line = line
        moment = time.time() if at is None else at
        record = LogRecord(stamp(moment), PARTIAL if partial else OUTPUT, line, self.service_id)
        if self._console is not None:
            self._console.write(self.service_id, shown_line(record))
        if self._journal is not None:
            self._journal.line(self.service_id, line, self.run, self.pid, record.stream)
        self._store(record)

    def begin_run(self, run: int, pid: int) -> None:
        """Run ``run`` of the service, its container's init ``pid``: marked in the log."""
        self.run, self.pid = run, pid
        self.mark(run_started(self.service_id, run))

    def mark(self, text: str) -> None:
        """The executor's own line between runs (``-- ext-x run 3 started --``)."""
        if self._journal is not None:
            self._journal.line(self.service_id, text, self.run, self.pid, MARKER)
        self._store(LogRecord(stamp(time.time()), MARKER, text, self.service_id))

    def _store(self, record: LogRecord) -> None:
        if self._file is not None:
            self._write_file(encode(record))
        for queue in self._followers:
            queue.put_nowait(record)

    def _write_file(self, data: bytes) -> None:
        assert self._file is not None
        now = time.monotonic()
        if self._write_error is not None and now < self._retry_at:
            self._count_dropped()
            return
        try:
            self._file.write(data)
        except OSError as error:
            self._retry_at = now + LOG_RETRY_SECONDS
            self._count_dropped()
            if self._write_error is None:
                name = errno.errorcode.get(error.errno or 0, str(error.errno))
                self._write_error = f"{error.strerror or error} ({name})"
                self._problem(
                    f"Log file {self._file.path.name} cannot be written: {self._write_error}; "
                    f"lines are dropped, writing is retried every "
                    f"{LOG_RETRY_SECONDS:g}s"
                )
            return
        if self._write_error is not None:
            count = self.dropped_since_error
            self._write_error = None
            self.dropped_since_error = 0
            self._problem(
                f"Log file {self._file.path.name} written again: "
                + dropped_message(count, "log file", "not writable")
            )

    def _count_dropped(self) -> None:
        self.dropped_since_error += 1
        self.dropped_total += 1

    def _problem(self, message: str) -> None:
        if self.on_problem is not None:
            self.on_problem(message)

    def files(self) -> list[Path]:
        return rotated_files(self._path, self._backups) if self._file is not None else []

    def tail(self, count: int | None, since: str = "") -> list[LogRecord]:
        return read_service(self.files(), self.service_id, count, since)

    def follow(self, queue: FollowerQueue | None = None) -> FollowerQueue:
        """A queue (``queue``, or a new one) of every record written from now on; None marks
        the log's end. One queue may follow several logs (`extsvc logs -f` of all services)."""
        if queue is None:
            queue = FollowerQueue()
        self._followers.add(queue)
        return queue

    def unfollow(self, queue: FollowerQueue) -> None:
        self._followers.discard(queue)

    def close(self) -> None:
        for queue in self._followers:
            queue.put_nowait(None)  # the end arrives even to a follower that fell behind
        self._followers.clear()
        if self._file is not None:
            self._file.close()
