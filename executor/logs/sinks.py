"""Output the executor writes to a reader it does not control, without ever blocking.

Two kinds. A *stream* (NonBlockingWriter, below) queues what its reader cannot take
yet. A *record sink* (RecordSink: /dev/kmsg, journald's socket) takes or refuses
each record at once; a refused record is dropped and counted.

The console (its stdout: a serial console at boot, a terminal, a pipe) and the
event output (its stderr) may have a reader that is stuck or gone. A blocking
write there would stop the whole event loop: no control socket, no stops, no
logs. So each such fd is written without blocking, through a bounded buffer
drained when the fd becomes writable; when the buffer is full, lines for that
sink are dropped and counted, and once the reader takes lines again one line
says how many were lost (``… 1,234 lines dropped: console not reading``).
A regular file (stdout redirected to a file) is written directly: it never
waits for a reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import stat
from collections import deque
from collections.abc import Callable

# What one sink may hold for a slow reader; beyond it lines are dropped.
BUFFER_BYTES = 256 * 1024
# At exit the buffer gets this long to reach a reader that is merely slow.
FINAL_DRAIN_SECONDS = 1.0


def dropped_message(count: int, what: str, why: str = "not reading") -> str:
    return f"… {count:,} line{'s' if count != 1 else ''} dropped: {what} {why}"


def _nonblocking_fd(fd: int) -> tuple[int, bool]:
    """An fd for ``fd``'s reader on which writes never block; (fd, True if ours to close).

    A pipe or terminal is opened again through /proc/self/fd: a new open file
    description, so O_NONBLOCK does not change the one the executor shares with
    its parent (a shell whose terminal would turn non-blocking too). If that is
    not possible (a socket), ``fd`` itself is made non-blocking.
    """
    try:
        os.fstat(fd)
        reopened = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            os.set_blocking(fd, False)
        return fd, False
    return reopened, True


class NonBlockingWriter:
    """Lines to one fd: never blocks, holds at most ``capacity`` bytes, drops and counts."""

    def __init__(
        self,
        fd: int,
        what: str,
        capacity: int = BUFFER_BYTES,
        on_dropped: Callable[[str], None] | None = None,
    ) -> None:
        self.what = what
        self.capacity = capacity
        self.dropped = 0
        self.dropped_total = 0
        self._on_dropped = on_dropped
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._watching = False
        self._closed = False
        try:
            self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            self._regular = False
        if self._regular:
            self._fd, self._own_fd = fd, False
        else:
            self._fd, self._own_fd = _nonblocking_fd(fd)
        self._loop = asyncio.get_running_loop()

    @property
    def buffered(self) -> int:
        return self._pending_bytes

    def write(self, line: bytes) -> None:
        """Queue ``line`` (its newline included) for the reader, or drop it if too much waits."""
        if self._closed:
            return
        if self._pending_bytes + len(line) > self.capacity:
            self.dropped += 1
            self.dropped_total += 1
            return
        if self.dropped and not self._pending:
            self._report_drops()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if not self._watching:
            self._flush()

    def _report_drops(self) -> None:
        message = dropped_message(self.dropped, self.what)
        self.dropped = 0
        notice = f"extsvc: {message}\n".encode()
        self._pending.append(notice)
        self._pending_bytes += len(notice)
        if self._on_dropped is not None:
            self._on_dropped(message)

    def _flush(self) -> None:
        """Write what the fd takes now; watch it for the rest."""
        while self._pending:
            chunk = self._pending[0]
            try:
                written = os.write(self._fd, chunk)
            except BlockingIOError:
                break
            except OSError:
                # The reader is gone for good (EPIPE, EIO of a hung-up terminal) or the
                # file system is full: what waits is lost, later lines are tried again.
                # (EINTR never gets here: os.write retries it, PEP 475.)
                self.dropped += len(self._pending)
                self.dropped_total += len(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                break
            self._pending_bytes -= written
            if written == len(chunk):
                self._pending.popleft()
            else:
                self._pending[0] = chunk[written:]
        if self._pending and not self._watching and not self._regular:
            self._loop.add_writer(self._fd, self._writable)
            self._watching = True
        elif not self._pending and self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False

    def _writable(self) -> None:
        self._flush()
        if not self._pending and self.dropped:
            self._report_drops()
            self._flush()

    def close(self) -> None:
        """Give a slow reader FINAL_DRAIN_SECONDS for what waits, then let it go."""
        if self._closed:
            return
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False
        if self.dropped:
            self._report_drops()
        deadline = self._loop.time() + FINAL_DRAIN_SECONDS
        while self._pending and not self._regular:
            left = deadline - self._loop.time()
            if left <= 0:
                break
            with contextlib.suppress(OSError):
                select.select([], [self._fd], [], left)
            before = self._pending_bytes
            self._flush()
            if self._watching:
                self._loop.remove_writer(self._fd)
                self._watching = False
            if self._pending_bytes == before and not self._pending:
                break
        self._closed = True
        if self._own_fd:
            with contextlib.suppress(OSError):
                os.close(self._fd)


class RecordSink:
    """Records to a receiver that takes or refuses each one at once (the kernel log,
    journald's socket): never waits. A refused record is dropped and counted; once the
    receiver takes records again, one record says how many were lost before it
    (``… 12 lines dropped: kmsg not accepting (EAGAIN)``), and ``on_dropped`` gets the
    same message (the daemon makes it a notice on the event output).

    A subclass says how to put one record (``_put``: None, or the errno's name of a
    refusal) and how the drop notice is worded as a record (``_notice``).
    """

    def __init__(self, what: str, on_dropped: Callable[[str], None] | None = None) -> None:
        self.what = what
        self._on_dropped = on_dropped
        self.dropped = 0
        self.dropped_total = 0
        self._refused_with = ""

    def _put(self, record: bytes) -> str | None:
        raise NotImplementedError

    def _notice(self, message: str) -> bytes:
        raise NotImplementedError

    def put(self, record: bytes) -> None:
        """Put ``record``, after the notice of earlier drops; drop and count it if refused."""
        if self.dropped and not self._report_drops():
            self._count_dropped(self._refused_with)
            return
        refused = self._put(record)
        if refused is not None:
            self._count_dropped(refused)

    def _count_dropped(self, refused_with: str) -> None:
        self.dropped += 1
        self.dropped_total += 1
        self._refused_with = refused_with

    def _drop_message(self) -> str:
        return dropped_message(self.dropped, self.what, f"not accepting ({self._refused_with})")

    def _report_drops(self) -> bool:
        """Say how many records were lost: to the receiver (False if it refuses still),
        and to ``on_dropped``."""
        message = self._drop_message()
        if self._put(self._notice(message)) is not None:
            return False
        self.dropped = 0
        if self._on_dropped is not None:
            self._on_dropped(message)
        return True

    def close_report(self) -> None:
        """At exit: the drops not reported yet, to the receiver or else to ``on_dropped``
        (the one place left to say so)."""
        if self.dropped and not self._report_drops() and self._on_dropped is not None:
            self._on_dropped(self._drop_message())
