"""The executor with real runc containers: a service runs, logs and stops cleanly; dependencies
start in order and stop in reverse; a path dependency; a task runc cannot start. Needs root."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    bind,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_busybox_service_runs_logs_and_stops_cleanly(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = unique("hello")
    # Missing mount sources are created only below /var or /run (docs/executor.md).
    missing_source = Path("/run/extsvc-tests") / name / "created-by-the-executor"
    request.addfinalizer(lambda: shutil.rmtree(missing_source.parent, ignore_errors=True))
    script = f'echo "hello from $(hostname)"; echo oops >&2; {IDLE}'
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, script, mounts=[bind(missing_source, "/data")])}
    )
    with running_daemon(tmp_path, out, [name]) as daemon:
        service = daemon.wait_state(f"ext-{name}", "Running")
        wait_for(lambda: len(daemon.logs(f"ext-{name}")) >= 2, 10, "two log lines")
        # No hostname in the spec (as Talos): the new UTS namespace starts with the host's.
        host = socket.gethostname()
        # stdout and stderr share one pipe, but busybox sh may flush its builtin
        # echo's stdout after the unbuffered stderr line: check both arrived.
        expected = sorted([f"hello from {host}", "oops"])
        assert sorted(daemon.logs(f"ext-{name}")[:2]) == expected
        stored = (tmp_path / "logs" / f"ext-{name}.log").read_text().splitlines()
        # Each line on disk: time, stream ("output": stdout and stderr are one pipe), text.
        assert sorted(line.split(" ", 2)[2] for line in stored[1:3]) == expected
        assert {line.split(" ", 2)[1] for line in stored[1:3]} == {"output"}
        assert service["pid"] and psutil.pid_exists(service["pid"])
        assert service["memoryBytes"] > 0 and service["processes"]
        # A missing mount source is created (0700) before start, as Talos does.
        assert missing_source.is_dir() and missing_source.stat().st_mode & 0o777 == 0o700
        messages = [e["message"] for e in service["events"]]
        assert (
            messages[0]
            == f"Started task ext-{name} (PID {service['pid']}) for container ext-{name}"
        )
        assert "Creating service runner" in messages and "Running pre state" in messages
        # The read-only rootfs is an overlay that still got its mount points.
        table = subprocess.run(
            [*EXTSVC, "service", "--state-dir", str(daemon.state_dir)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert re.search(rf"ext-{name}\s+Running\s+\?", table.stdout)
        assert daemon.stop() == 0
        assert "Sending SIGKILL" not in daemon.stderr()
    assert traces(tmp_path / "state", [name]) == []


def test_dependency_chain_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    a, b, c = unique("a"), unique("b"), unique("c")
    shared = tmp_path / "shared"
    shared.mkdir()

    def chained(name: str, label: str, after: str | None) -> str:
        script = (
            f"trap 'echo stop {label} >> /data/order; exit 0' TERM; "
            f"echo start {label} >> /data/order; while :; do sleep 1 & wait $!; done"
        )
        depends = [{"service": f"ext-{after}"}] if after else None
        return shell_service(name, script, depends=depends, mounts=[bind(shared, "/data")])

    out, _ = compile_plan(
        tmp_path, {a: chained(a, "a", None), b: chained(b, "b", a), c: chained(c, "c", b)}
    )
    with running_daemon(tmp_path, out, [a, b, c]) as daemon:
        daemon.wait_state(f"ext-{c}", "Running")
        wait_for(lambda: (shared / "order").read_text().count("start") == 3, 5, "three starts")
        waited = [e["message"] for e in daemon.service(f"ext-{c}")["events"]]
        assert f'Waiting for service "ext-{b}" to be "up"' in waited
        # "up" is Talos's: the dependency's task was started (not that it wrote anything
        # yet), so the tasks start in order while their first writes may race.
        started = [started_at(daemon.service(f"ext-{s}")) for s in (a, b, c)]
        assert started == sorted(started)
        assert daemon.stop() == 0
    order = (shared / "order").read_text().split("\n")
    assert sorted(order[:3]) == ["start a", "start b", "start c"]
    assert order[3:] == ["stop c", "stop b", "stop a", ""]
    assert traces(tmp_path / "state", [a, b, c]) == []


def started_at(service: dict[str, Any]) -> float:
    (time_started,) = [
        e["time"] for e in service["events"] if e["message"].startswith("Started task")
    ]
    return datetime.fromisoformat(time_started).timestamp()  # RFC 3339


def test_path_dependency_is_released_by_creating_the_file(tmp_path: Path) -> None:
    name = unique("gated")
    flag = tmp_path / "flag"
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, IDLE, depends=[{"path": str(flag)}])}
    )
    with running_daemon(tmp_path, out, [name]) as daemon:
        waiting = daemon.wait_state(f"ext-{name}", "Waiting")
        assert waiting["events"][0]["message"] == f'Waiting for path "{flag}"'
        time.sleep(0.5)
        assert daemon.state(f"ext-{name}") == "Waiting"
        flag.touch()
        daemon.wait_state(f"ext-{name}", "Running", timeout=5)


def test_a_task_that_cannot_start_fails_with_runcs_reason(tmp_path: Path) -> None:
    name = unique("broken")
    service = shell_service(name, "true", restart="never").replace(
        '"entrypoint": "/bin/sh"', '"entrypoint": "/no/such/binary"'
    )
    out, _ = compile_plan(tmp_path, {name: service})
    with running_daemon(tmp_path, out, [name]) as daemon:
        failed = daemon.wait_state(f"ext-{name}", "Failed")
        message = failed["events"][0]["message"]
        expected = f'Failed to start task "ext-{name}": runc create exited with code 1'
        assert message.startswith(expected)
        assert "/no/such/binary" in message and "no such file or directory" in message
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []
