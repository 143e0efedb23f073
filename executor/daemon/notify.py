"""systemd's readiness protocol (sd_notify): one datagram to $NOTIFY_SOCKET per message.

The protocol is a Unix datagram of ``KEY=VALUE`` lines; no library needed. The
executor says ``READY=1`` once the plan is loaded, recovery is done and every
service began its first attempt; ``RELOADING=1`` … ``READY=1`` around a reload;
``STOPPING=1`` at shutdown; and ``WATCHDOG=1`` every half ``$WATCHDOG_USEC``
while its event loop runs (so a hung loop is what the watchdog catches).
Without ``$NOTIFY_SOCKET`` (not started by systemd) every call does nothing. The
variables are read once at start-up and removed from the executor's environment
(executor.process.environment); the notifier is given what was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time


class Notifier:
    def __init__(self, address: str | None) -> None:
        # "@name" is an abstract socket (leading NUL), as systemd documents.
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        """Send one message; a vanished manager must not stop the executor."""
        if self.address is None:
            return
        if self._socket is None:
            # Non-blocking: a manager that does not read (its queue holds only
            # net.unix.max_dgram_qlen datagrams, 10 by default) must never stall the loop;
            # a message that does not fit is dropped (BlockingIOError).
            self._socket = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )
        with contextlib.suppress(OSError):
            self._socket.sendto("\n".join(fields).encode(), self.address)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd (Type=notify-reload) match this to its reload request.
        self.send(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping all services")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    async def watchdog(self, usec: int | None) -> None:
        """Ping every half watchdog interval until cancelled (systemd's recommendation)."""
        if self.address is None or not usec or usec <= 0:
            return
        interval = usec / 2_000_000
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
