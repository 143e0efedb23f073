"""The executor with real runc containers (DESIGN §6, issue 3 item 12). Needs root."""

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
    alive,
    bind,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

COUNT_RUN = (
    'n=$(( $(cat /data/count 2>/dev/null || echo 0) + 1 )); echo $n > /data/count; echo "run $n"'
)


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


def test_restart_policies_count_the_runs(tmp_path: Path) -> None:
    names = {policy: unique(policy.lower()) for policy in ("always", "never", "untilSuccess")}
    data = {policy: tmp_path / f"data-{policy}" for policy in names}
    for directory in data.values():
        directory.mkdir()
    scripts = {
        "always": f"{COUNT_RUN}; exit 0",
        "never": f"{COUNT_RUN}; exit 1",
        "untilSuccess": f'{COUNT_RUN}; [ "$n" -ge 3 ]',
    }
    services = {
        names[p]: shell_service(names[p], scripts[p], restart=p, mounts=[bind(data[p], "/data")])
        for p in names
    }
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, list(names.values())) as daemon:
        until = daemon.wait_state(f"ext-{names['untilSuccess']}", "Finished")
        assert until["runs"] == 3
        assert (data["untilSuccess"] / "count").read_text().strip() == "3"
        never = daemon.wait_state(f"ext-{names['never']}", "Failed")
        assert never["runs"] == 1
        assert never["events"][0]["message"] == (
            f'task "ext-{names["never"]}" failed: exit code 1 (last log "run 1")'
        )
        wait_for(lambda: daemon.service(f"ext-{names['always']}")["runs"] >= 4, 10, "4 runs")
        time.sleep(0.5)
        assert daemon.service(f"ext-{names['never']}")["runs"] == 1
        assert daemon.service(f"ext-{names['untilSuccess']}")["runs"] == 3
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", list(names.values())) == []


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


def test_crash_loop_is_bounded_by_the_restart_interval(tmp_path: Path) -> None:
    name = unique("crash")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, "echo crashing; exit 3")})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Waiting", "Preparing", "Running")
        started = time.monotonic()
        first = daemon.service(f"ext-{name}")["runs"]
        # It keeps trying (the timeout only turns a stop into a failure)...
        wait_for(lambda: daemon.service(f"ext-{name}")["runs"] >= first + 2, 30, "2 restarts")
        runs = daemon.service(f"ext-{name}")["runs"] - first
        elapsed = time.monotonic() - started
        # ...but never faster than one run per 200ms interval (plus the run in progress);
        # a slow machine only lowers the count.
        assert runs <= elapsed / 0.2 + 1
        messages = [e["message"] for e in daemon.service(f"ext-{name}")["events"]]
        assert any(
            'exit code 3 (last log "crashing"); restarting forever in 200ms' in m for m in messages
        )


def test_stop_escalates_to_sigkill_for_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    name = unique("stubborn")
    script = "trap '' TERM; echo ready; while :; do sleep 0.2; done"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        started = time.monotonic()
        assert daemon.control("stop", f"ext-{name}")["message"] == f"Service 'ext-{name}' stopped"
        assert time.monotonic() - started >= 1.0
        service = daemon.service(f"ext-{name}")
        assert service["state"] == "Finished"
        messages = [e["message"] for e in service["events"]]
        assert messages[0] == "Service stopped"
        assert messages[1].startswith(f"Sending SIGKILL to task ext-{name}")
        assert messages[2].startswith(f"Sending SIGTERM to task ext-{name}")
        assert [
            t for t in traces(daemon.state_dir, [name]) if "cgroup" in t or "container" in t
        ] == []


def test_writeable_rootfs_writes_are_gone_after_a_restart(tmp_path: Path) -> None:
    name = unique("scratch")
    script = (
        'if [ -e /scribble ]; then echo "rootfs kept writes"; else echo "fresh rootfs"; fi; '
        f"echo data > /scribble && echo wrote; {IDLE}"
    )
    readonly = unique("readonly")
    out, base = compile_plan(
        tmp_path,
        {
            name: shell_service(name, script, writeable_rootfs=True),
            readonly: shell_service(readonly, f"touch /scribble || echo read-only; {IDLE}"),
        },
    )
    with running_daemon(tmp_path, out, [name, readonly]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        wait_for(lambda: "wrote" in daemon.logs(f"ext-{name}"), 5, "first write")
        daemon.control("restart", f"ext-{name}")
        wait_for(lambda: daemon.logs(f"ext-{name}").count("wrote") == 2, 10, "second write")
        assert daemon.logs(f"ext-{name}").count("fresh rootfs") == 2
        assert "rootfs kept writes" not in daemon.logs(f"ext-{name}")
        assert not (base / name / "scribble").exists()
        wait_for(lambda: "read-only" in daemon.logs(f"ext-{readonly}"), 5, "read-only rootfs")


def test_sigkilled_executor_leaves_nothing_after_the_next_one(tmp_path: Path) -> None:
    name = unique("orphan")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with running_daemon(tmp_path, out, [name]) as first:
        pid = first.wait_state(f"ext-{name}", "Running")["pid"]
        first.kill()
        assert psutil.pid_exists(pid), "the container outlives a SIGKILLed executor"
        assert traces(first.state_dir, [name]) != []
        with running_daemon(tmp_path, out, [name]) as second:
            new_pid = second.wait_state(f"ext-{name}", "Running")["pid"]
            assert new_pid != pid
            assert not alive(pid)
            assert "cleaned up after a previous executor: container" in second.stderr()
            assert second.stop() == 0
        assert traces(tmp_path / "state", [name]) == []


def test_log_to_console_lines_reach_the_console(tmp_path: Path) -> None:
    loud, quiet = unique("loud"), unique("quiet")
    out, _ = compile_plan(
        tmp_path,
        {
            loud: shell_service(loud, f"echo to the console; {IDLE}", log_to_console=True),
            quiet: shell_service(quiet, f"echo only in the file; {IDLE}"),
        },
    )
    with running_daemon(tmp_path, out, [loud, quiet], "--console", "stdout") as daemon:
        wait_for(lambda: f"ext-{loud}: to the console" in daemon.stdout(), 10, "console line")
        wait_for(lambda: "only in the file" in daemon.logs(f"ext-{quiet}"), 5, "quiet log")
        assert "only in the file" not in daemon.stdout()


def test_second_executor_on_the_same_state_dir_refuses(tmp_path: Path) -> None:
    name = unique("single")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        second = subprocess.run(daemon.argv(), capture_output=True, text=True, timeout=30)
        assert second.returncode == 3
        assert "is using the state dir" in second.stderr
        assert "Traceback" not in second.stderr
        assert daemon.state(f"ext-{name}") in ("Running", "Preparing", "Waiting")


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
