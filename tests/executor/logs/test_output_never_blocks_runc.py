"""Output nobody reads never blocks the executor, with real runc: a console and an
event output nobody reads, a `logs -f` client that never reads, a full log disk.
Needs root."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.executor.realrunc import (
    IDLE,
    Daemon,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

FLOOD = 'i=0; while :; do i=$((i+1)); echo "flood line $i ..............................."; done'
# Lines of 60,000 bytes, as fast as the shell can.
LONG_LINES = 'l=$(head -c 60000 /dev/zero | tr "\\0" x); while :; do echo "$l"; done'


def log_position(log_file: Path) -> tuple[int, int]:
    """(inode, size) of a service's live log file. Rotation renames it, then opens a new
    one: for a moment there is none (a plain stat() failed so under CI=true make test)."""
    found: list[tuple[int, int]] = []

    def present() -> bool:
        with contextlib.suppress(FileNotFoundError):
            status = log_file.stat()
            found.append((status.st_ino, status.st_size))
        return bool(found)

    wait_for(present, 10, f"{log_file.name} to exist")
    return found[0]


def log_size(log_file: Path) -> int:
    return log_position(log_file)[1]


def grew(log_file: Path, since: tuple[int, int], by: int) -> bool:
    """Written to since ``since`` (a log_position): ``by`` bytes more, or rotated."""
    inode, size = log_position(log_file)
    return inode != since[0] or size > since[1] + by


class PipedDaemon(Daemon):
    """A daemon whose stdout and stderr are one pipe that nobody reads until ``drain``."""

    def start(self) -> PipedDaemon:
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_for(self._answers, timeout=20, what="the control socket")
        return self

    def drain(self) -> list[bytes]:
        """Start reading the pipe (in a thread); the list fills until the daemon exits."""
        assert self.process is not None and self.process.stdout is not None
        received: list[bytes] = []
        pipe = self.process.stdout
        threading.Thread(
            target=lambda: received.extend(iter(pipe.readline, b"")), daemon=True
        ).start()
        return received


@pytest.fixture
def piped(tmp_path: Path) -> Iterator[tuple[PipedDaemon, str, str]]:
    flood, other = unique("console-flood"), unique("other")
    out, _ = compile_plan(
        tmp_path,
        {
            flood: shell_service(flood, FLOOD, log_to_console=True),
            other: shell_service(other, IDLE),
        },
    )
    daemon = PipedDaemon(tmp_path, out, [flood, other])
    try:
        yield daemon.start(), flood, other
    finally:
        daemon.force_cleanup()


def test_console_and_events_into_a_pipe_nobody_reads_never_block(
    piped: tuple[PipedDaemon, str, str], tmp_path: Path
) -> None:
    daemon, flood, other = piped
    daemon.wait_state(f"ext-{flood}", "Running")
    log_file = tmp_path / "logs" / f"ext-{flood}.log"
    # Far more console output than a pipe holds (64 KiB) has been produced by now.
    wait_for(lambda: log_size(log_file) > 512 * 1024, 30, "the flood to fill its log")
    # The control socket answers, another service stops and starts, the log keeps growing.
    assert daemon.control("stop", f"ext-{other}")["ok"]
    assert daemon.state(f"ext-{other}") == "Finished"
    assert daemon.control("start", f"ext-{other}")["ok"]
    before = log_position(log_file)
    wait_for(lambda: grew(log_file, before, 64 * 1024), 30, "the log to keep growing")
    # Fleet metrics count what the console lost (extsvc_sink_dropped_lines_total).
    metrics = daemon.extsvc("metrics")
    assert metrics.returncode == 0, metrics.stderr
    dropped = [
        line for line in metrics.stdout.splitlines()
        if line.startswith('extsvc_sink_dropped_lines_total{sink="stdout"} ')
    ]  # fmt: skip
    assert len(dropped) == 1 and int(dropped[0].split()[-1]) > 0, dropped
    received = daemon.drain()
    wait_for(
        lambda: any(b"lines dropped: console not reading" in line for line in received),
        30,
        "the console to report its dropped lines",
    )
    assert daemon.stop() == 0
    assert traces(tmp_path / "state", [flood, other]) == []


def test_a_follower_that_never_reads_does_not_grow_the_executor(tmp_path: Path) -> None:
    name = unique("long-lines")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, LONG_LINES)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        assert daemon.process is not None
        executor = psutil.Process(daemon.process.pid)
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(str(daemon.state_dir / "control.sock"))
        stuck.sendall(
            b'{"op": "logs", "id": "ext-%s", "tail": 0, "follow": true}\n' % name.encode()
        )
        time.sleep(2)  # the executor's own memory settles (imports, first lines)
        baseline = executor.memory_info().rss
        log_file = tmp_path / "logs" / f"ext-{name}.log"
        size = log_size(log_file)
        # Lines keep going by the client that reads nothing (was: +574 MB in ~10 s).
        time.sleep(10)
        if log_size(log_file) == size and not log_file.with_name(log_file.name + ".1").exists():
            # Failed once in a whole-suite CI run (not reproduced alone, nor under load):
            # say where the service and the executor were.
            detail = daemon.service(f"ext-{name}")
            pytest.fail(
                f"no line logged in 10 s (log at {size} bytes): {detail['state']}, PID "
                f"{detail.get('pid')}, last events {messages(detail)[-3:]}; executor "
                f"{executor.status()}, CPU {executor.cpu_times()}",
                pytrace=False,
            )
        growth = executor.memory_info().rss - baseline
        assert growth < 64 * 1024 * 1024, f"RSS grew by {growth / 1e6:.0f} MB"
        assert daemon.service(f"ext-{name}")["state"] == "Running"
        stuck.close()
        assert daemon.stop() == 0


def test_a_follower_that_never_reads_does_not_hold_up_the_exit(tmp_path: Path) -> None:
    """At shutdown a stuck client's connection is aborted: closing it gracefully would wait
    for its buffer to drain, for ever."""
    name = unique("stuck-exit")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, LONG_LINES)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(str(daemon.state_dir / "control.sock"))
        stuck.sendall(
            b'{"op": "logs", "id": "ext-%s", "tail": 0, "follow": true}\n' % name.encode()
        )
        time.sleep(3)  # the client's buffer and then the executor's fill up
        try:
            # The grace (1 s) plus the followers' 2 s to drain, and room for a busy host.
            assert daemon.stop(timeout=30) == 0
        finally:
            stuck.close()
    assert traces(tmp_path / "state", [name]) == []


def test_a_full_log_disk_keeps_the_service_running_and_resumes(
    tmp_path: Path, tiny_log_dir: Path
) -> None:
    name = unique("disk-full")
    script = 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.01; done'
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    filler = tiny_log_dir / "filler"
    filler.write_bytes(b"f" * 48 * 1024)
    with running_daemon(tmp_path, out, [name]) as daemon:
        service_id = f"ext-{name}"

        def events() -> list[str]:
            return [e["message"] for e in daemon.service(service_id)["events"]]

        wait_for(lambda: any("cannot be written" in m for m in events()), 60, "the disk to fill")
        full = next(m for m in events() if "cannot be written" in m)
        assert "No space left on device (ENOSPC)" in full
        assert daemon.state(service_id) == "Running"
        filler.unlink()
        wait_for(lambda: any("written again" in m for m in events()), 30, "writing to resume")
        assert sum("cannot be written" in m for m in events()) == 1
        last = daemon.logs(service_id)[-1]
        wait_for(lambda: daemon.logs(service_id)[-1] != last, 10, "new lines in the log")
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []
