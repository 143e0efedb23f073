"""A journald for tests: the receiving side of systemd.io/JOURNAL_NATIVE_PROTOCOL written
from the document (both field forms, the sealed memfd of a large entry), so what the
executor sends is checked by decoding it."""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
from pathlib import Path

Entry = list[tuple[str, bytes]]


def decode(payload: bytes) -> Entry:
    """journald's parser: ``KEY=VALUE\\n``, or ``KEY\\n`` + le64 length + value + ``\\n``."""
    fields: Entry = []
    at = 0
    while at < len(payload):
        end = payload.index(b"\n", at)
        line = payload[at:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            at = end + 1
        else:
            key = line
            (length,) = struct.unpack_from("<Q", payload, end + 1)
            start = end + 1 + 8
            value = payload[start : start + length]
            assert payload[start + length : start + length + 1] == b"\n"
            at = start + length + 1
        fields.append((key.decode("ascii"), value))
    return fields


class FakeJournald:
    """A bound datagram socket standing in for /run/systemd/journal/socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)
        self.sealed: list[int] = []

    def entries(self) -> list[dict[str, str]]:
        """Every entry waiting, as {key: value} (the last of a repeated key)."""
        found = []
        while True:
            try:
                data, ancillary, _, _ = self.socket.recvmsg(1 << 20, socket.CMSG_SPACE(4))
            except BlockingIOError:
                return found
            if ancillary:
                assert data == b"", "a memfd comes with an empty payload"
                fds = array.array("i")
                fds.frombytes(ancillary[0][2])
                memfd = fds[0]
                self.sealed.append(fcntl.fcntl(memfd, fcntl.F_GET_SEALS))
                data = os.pread(memfd, os.fstat(memfd).st_size, 0)
                os.close(memfd)
            found.append({k: v.decode(errors="replace") for k, v in decode(data)})

    def close(self) -> None:
        self.socket.close()
        self.path.unlink(missing_ok=True)
