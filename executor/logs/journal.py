"""Service output to journald, through its native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL).

One datagram per line to ``/run/systemd/journal/socket``: ``KEY=VALUE`` lines, and
for a value holding a newline the key, a newline, its length as a little-endian
64-bit integer, the value and a newline. An entry too large for a datagram
(EMSGSIZE, ENOBUFS) goes as a sealed memfd passed with an empty payload, as
``sd_journal_sendv`` does. No libsystemd: the protocol is a few lines.

Each line carries::

    MESSAGE=<the line>            PRIORITY=6 (output) or 5 (the executor's run markers)
    SYSLOG_IDENTIFIER=ext-<name>  SYSLOG_FACILITY=3 (daemon)
    SYSLOG_PID=<the container's init PID> (journalctl's short output shows _PID)
    EXTSVC_SERVICE=ext-<name>     EXTSVC_RUN=<run number>
    EXTSVC_STREAM=output|partial|extsvc (as in the log files: executor.logs.logfile)

so ``journalctl -t ext-NAME`` and ``journalctl EXTSVC_SERVICE=ext-NAME EXTSVC_RUN=3``
find them. stdout and stderr are one pipe (DESIGN §6, their order kept), so a line's
stream is not known: every output line is PRIORITY=6, none is claimed to be an error.
journald attributes a datagram to the sender's cgroup: the executor's, so under systemd
every line is also ``_SYSTEMD_UNIT=extsvc.service`` (``journalctl -u extsvc``).

Never blocking: the socket is non-blocking, a datagram journald does not take now (it
is stopped: ENOENT, ECONNREFUSED; or slow: its queue is full, EAGAIN) is dropped and
counted (executor.logs.sinks.RecordSink), and once it takes datagrams again one entry says
how many were lost. What journald's own rate limit drops it counts itself
("Suppressed N messages").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from extsvc.executor.logs.logfile import MARKER
from extsvc.executor.logs.sinks import RecordSink

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
# What may wait in the kernel for a slow journald, as sd-journal asks for (SNDBUF_SIZE):
# a unix datagram counts against its sender's buffer until it is read.
SEND_BUFFER_BYTES = 8 * 1024 * 1024
# Beyond net.core.wmem_max, for root (Linux's value; the socket module does not name it).
SO_SNDBUFFORCE = 32
OUTPUT_PRIORITY = 6  # info: stdout and stderr cannot be told apart (one pipe)
MARKER_PRIORITY = 5  # notice: the executor's own line between runs
NOTICE_PRIORITY = 4  # warning: lines were dropped
DAEMON_FACILITY = 3
NOTICE_IDENTIFIER = "extsvc"
# Too large for one datagram: the entry goes in a memfd (sd_journal_sendv does the same).
TOO_LARGE = (errno.EMSGSIZE, errno.ENOBUFS)
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL

Field = tuple[str, "str | bytes | int"]


def encode_field(key: str, value: str | bytes | int) -> bytes:
    """One field in the native format; the binary form when the value holds a newline."""
    data = value if isinstance(value, bytes) else str(value).encode(errors="replace")
    name = key.encode("ascii")
    if b"\n" in data:
        return name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name + b"=" + data + b"\n"


def encode_entry(fields: Iterable[Field]) -> bytes:
    return b"".join(encode_field(key, value) for key, value in fields)


def is_journal_stream(fd: int, environ: Mapping[str, str]) -> bool:
    """Whether ``fd`` is the journald stream systemd connected ($JOURNAL_STREAM, "dev:ino",
    systemd.exec(5)): then a line written there is in the journal already."""
    try:
        status = os.fstat(fd)
    except OSError:
        return False
    return environ.get("JOURNAL_STREAM") == f"{status.st_dev}:{status.st_ino}"


def refusal(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, str(error.errno))


class JournalSocket:
    """Datagrams to journald's socket, each sent at once or refused (an errno's name)."""

    def __init__(self, path: Path = JOURNAL_SOCKET) -> None:
        self.path = str(path)
        self._socket = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        )
        for option in (SO_SNDBUFFORCE, socket.SO_SNDBUF):  # FORCE needs root
            try:
                self._socket.setsockopt(socket.SOL_SOCKET, option, SEND_BUFFER_BYTES)
                break
            except OSError:
                continue

    def send(self, entry: bytes) -> str | None:
        """Send ``entry``; None, or why it was refused (the errno's name)."""
        try:
            # To the path each time: a journald restarted on a new socket is found again.
            self._socket.sendto(entry, self.path)
        except OSError as error:
            if error.errno in TOO_LARGE:
                return self._send_memfd(entry)
            return refusal(error)
        return None

    def _send_memfd(self, entry: bytes) -> str | None:
        """The entry in a sealed memfd, passed with an empty payload."""
        try:
            memfd = os.memfd_create("extsvc-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError as error:
            return refusal(error)
        try:
            view = memoryview(entry)
            while view:
                view = view[os.write(memfd, view) :]
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, SEALS)
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", memfd))]
            self._socket.sendmsg([], rights, 0, self.path)
        except OSError as error:
            return refusal(error)
        finally:
            os.close(memfd)
        return None

    def close(self) -> None:
        self._socket.close()


class Journal(RecordSink):
    """Every service's lines to journald; shared by all services' logs (one socket)."""

    def __init__(
        self, path: Path = JOURNAL_SOCKET, on_dropped: Callable[[str], None] | None = None
    ) -> None:
        super().__init__("journald", on_dropped)
        self._socket = JournalSocket(path)

    def line(self, service_id: str, text: str, run: int, pid: int | None, stream: str) -> None:
        """One line of ``service_id``'s output, or the executor's marker between its runs;
        ``stream`` as in the log files (executor.logs.logfile: output, partial, extsvc)."""
        fields: list[Field] = [
            ("MESSAGE", text),
            ("PRIORITY", MARKER_PRIORITY if stream == MARKER else OUTPUT_PRIORITY),
            ("SYSLOG_FACILITY", DAEMON_FACILITY),
            ("SYSLOG_IDENTIFIER", service_id),
            ("EXTSVC_SERVICE", service_id),
            ("EXTSVC_STREAM", stream),
        ]
        if run > 0:
            fields.append(("EXTSVC_RUN", run))
        if pid is not None:
            fields.append(("SYSLOG_PID", pid))
        self.put(encode_entry(fields))

    def _put(self, record: bytes) -> str | None:
        return self._socket.send(record)

    def _notice(self, message: str) -> bytes:
        return encode_entry(
            [
                ("MESSAGE", f"extsvc: {message}"),
                ("PRIORITY", NOTICE_PRIORITY),
                ("SYSLOG_FACILITY", DAEMON_FACILITY),
                ("SYSLOG_IDENTIFIER", NOTICE_IDENTIFIER),
            ]
        )

    def close(self) -> None:
        self.close_report()
        with contextlib.suppress(OSError):
            self._socket.close()
