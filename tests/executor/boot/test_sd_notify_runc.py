"""The real executor's sd_notify messages reach the notify socket, with real runc. Needs root."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    SLEEP_LOOP,
    compile_plan,
    notify_receiver,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_sd_notify_messages_reach_the_notify_socket(tmp_path: Path) -> None:
    name = unique("notify")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
    with notify_receiver(tmp_path / "notify.sock") as messages:

        def seen(prefix: str, after: int = 0) -> int:
            """Index of the first message from ``after`` on that starts with ``prefix``."""
            found: list[int] = []

            def arrived() -> bool:
                later = enumerate(messages[after:], after)
                found[:] = [i for i, message in later if message.startswith(prefix)]
                return bool(found)

            wait_for(arrived, 30, f"{prefix} on the notify socket: {messages}")
            return found[0]

        with running_daemon(tmp_path, out, [name], env=env) as daemon:
            ready = seen("READY=1")
            assert "STATUS=running 1 service(s)" in messages[ready]
            # READY=1 came after every service began its first attempt, and the service
            # runs: runc was not handed the executor's NOTIFY_SOCKET (it would wait for
            # the container's READY=1, for ever).
            assert daemon.state(f"ext-{name}") != "Initialized"
            daemon.wait_state(f"ext-{name}", "Running")
            seen("WATCHDOG=1", ready)
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGHUP)
            reloading = seen("RELOADING=1", ready)
            seen("READY=1", reloading)
            assert daemon.stop() == 0
            seen("STOPPING=1", reloading)
