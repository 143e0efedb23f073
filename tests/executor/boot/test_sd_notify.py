"""The executor tells its service manager READY, RELOADING and STOPPING over $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from extsvc.executor.daemon.notify import Notifier


def test_sd_notify_datagrams(tmp_path: Path) -> None:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.settimeout(5)
    notifier = Notifier(str(tmp_path / "notify"))
    notifier.ready("running 2 service(s)")
    notifier.reloading()
    notifier.stopping()

    async def one_ping() -> None:
        task = asyncio.create_task(notifier.watchdog(20_000_000))
        await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(one_ping())
    received = [receiver.recv(4096).decode() for _ in range(4)]
    assert received[0] == "READY=1\nSTATUS=running 2 service(s)"
    assert received[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert received[2].startswith("STOPPING=1")
    assert received[3] == "WATCHDOG=1"
    assert not Notifier(None).enabled
    Notifier(None).ready("nobody listens")  # no socket: nothing happens, nothing fails
