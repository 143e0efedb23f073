"""The real executor's service lines to journald's native socket (a test socket), real runc.

`journalctl` itself is checked in the systemd rig; here the daemon's side: every line
arrives with its fields, and a journald that stops reading or goes away never holds up
the executor: the control socket answers, the log file gets every line, drops are
counted and reported. Needs root.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.executor.logs.fakejournald import FakeJournald
from tests.executor.realrunc import (
    IDLE,
    Daemon,
    compile_plan,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

# 2,500 lines a second in bursts: more than a journald that stopped reading can queue
# within a second, without taking the (shared) CPUs from everything else.
FLOOD = "while :; do yes flood line with some padding to fill | head -n 500; sleep 0.2; done"
# A blocked executor would never answer; a loaded host answers slowly.
ANSWER_BOUND = 15.0


def test_service_lines_reach_journald_with_their_fields(tmp_path: Path) -> None:
    name = unique("journal")
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, f"echo hello journal; echo second; {IDLE}")}
    )
    journald = FakeJournald(tmp_path / "journal.socket")
    entries: list[dict[str, str]] = []
    try:
        with running_daemon(
            tmp_path, out, [name], "--log-target", "both", "--journal-socket", str(journald.path)
        ) as daemon:
            pid = daemon.wait_state(f"ext-{name}", "Running")["pid"]

            def arrived() -> bool:
                entries.extend(journald.entries())
                return any(e["MESSAGE"] == "second" for e in entries)

            wait_for(arrived, 10, "the lines in the journal")
            hello = next(e for e in entries if e["MESSAGE"] == "hello journal")
            assert hello["SYSLOG_IDENTIFIER"] == f"ext-{name}"
            assert hello["EXTSVC_SERVICE"] == f"ext-{name}"
            assert (hello["EXTSVC_RUN"], hello["SYSLOG_PID"]) == ("1", str(pid))
            assert (hello["PRIORITY"], hello["EXTSVC_STREAM"]) == ("6", "output")
            assert any(e["MESSAGE"] == f"-- ext-{name} run 1 started --" for e in entries)
            assert daemon.logs(f"ext-{name}")[:2] == ["hello journal", "second"]
    finally:
        journald.close()


def slowest_answer(daemon: Daemon, tries: int = 3) -> float:
    """The longest of ``tries`` `extsvc service` round trips, in seconds."""
    slowest = 0.0
    for _ in range(tries):
        began = time.monotonic()
        daemon.extsvc("service", check=True)
        slowest = max(slowest, time.monotonic() - began)
    return slowest


def journald_refuses(journald: FakeJournald) -> bool:
    """Whether the sender now gets EAGAIN: its datagrams wait unread (nothing is read)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    try:
        probe.sendto(b"MESSAGE=probe\n", str(journald.path))
    except BlockingIOError:
        return True
    finally:
        probe.close()
    return False


def test_a_stopped_journald_never_blocks_the_executor(tmp_path: Path) -> None:
    name = unique("flood")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, FLOOD)})
    journald = FakeJournald(tmp_path / "journal.socket")
    try:
        with running_daemon(
            tmp_path, out, [name], "--log-target", "both", "--journal-socket", str(journald.path)
        ) as daemon:
            daemon.wait_state(f"ext-{name}", "Running")
            # journald stops reading: its queue fills, then every datagram is refused.
            wait_for(lambda: journald_refuses(journald), 20, "journald's queue to be full")
            slowest = slowest_answer(daemon)
            # Then it is gone altogether (systemctl stop systemd-journald.socket ...).
            journald.close()
            size = (daemon.log_dir / f"ext-{name}.log").stat().st_size
            slowest = max(slowest, slowest_answer(daemon))
            assert slowest < ANSWER_BOUND, f"`extsvc service` took {slowest:.1f}s"
            # The log file keeps getting the lines (it rotates: its size moves).
            wait_for(
                lambda: (daemon.log_dir / f"ext-{name}.log").stat().st_size != size,
                10,
                "more lines in the log file",
            )
            # journald is back: the first entry says how many lines it lost.
            back = FakeJournald(tmp_path / "journal.socket")
            notices: list[dict[str, str]] = []

            def reported() -> bool:
                notices.extend(e for e in back.entries() if e["SYSLOG_IDENTIFIER"] == "extsvc")
                return bool(notices)

            wait_for(reported, 10, "the drop notice")
            assert "lines dropped: journald not accepting" in notices[0]["MESSAGE"]
            wait_for(
                lambda: "lines dropped: journald not accepting" in daemon.stderr(),
                5,
                "the notice on the event output",
            )
            back.close()
    finally:
        journald.close()
