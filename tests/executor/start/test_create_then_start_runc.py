"""runc create + runc start, no resident runc, with real runc. Needs root.

A service whose spec is final is created while it waits, so only `runc start` is left when its
dependency is met; no runc process stays while services run."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.executor.realrunc import (
    IDLE,
    compile_gated,
    compile_plan,
    runc_state,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def runc_processes_below(pid: int) -> list[str]:
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for process in below:
        try:
            if process.name() == "runc" or "runc" in process.cmdline()[:1]:
                found.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return found


def test_no_runc_process_stays_while_services_run(tmp_path: Path) -> None:
    names = [unique("resident") for _ in range(3)]
    out, _ = compile_plan(tmp_path, {n: shell_service(n, f"echo up; {IDLE}") for n in names})
    with running_daemon(tmp_path, out, names) as daemon:
        for name in names:
            daemon.wait_state(f"ext-{name}", "Running")
        assert daemon.process is not None
        # A resident runc never goes: the deadline only has to outlast a busy machine.
        wait_for(lambda: runc_processes_below(daemon.process.pid) == [], 30, "no runc process")
        # Each container's init is the executor's own child (re-parented to the subreaper).
        for name in names:
            init = psutil.Process(daemon.service(f"ext-{name}")["pid"])
            assert init.ppid() == daemon.process.pid
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", names) == []


def test_a_waiting_service_is_created_and_starts_when_its_dependency_is_met(
    tmp_path: Path,
) -> None:
    name = unique("gated")
    out, flag = compile_gated(tmp_path, name, f"echo started; {IDLE}")
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Waiting")
        # Created while waiting: a stopped init, nothing of the service runs yet.
        wait_for(lambda: runc_state(daemon.state_dir, f"ext-{name}") == "created", 10, "created")
        assert daemon.logs(f"ext-{name}") == []
        assert daemon.service(f"ext-{name}")["pid"] is None
        # How soon it starts is a figure for bench/lifecycle_bench.py; the timeout here
        # only turns a service that never starts into a failure.
        flag.touch()
        wait_for(lambda: "started" in daemon.logs(f"ext-{name}"), 15, "the first line")
        assert runc_state(daemon.state_dir, f"ext-{name}") == "running"
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_twenty_one_shots_exiting_0_all_finish(tmp_path: Path) -> None:
    names = [unique("oneshot") for _ in range(20)]
    out, _ = compile_plan(
        tmp_path, {n: shell_service(n, "echo done", restart="never") for n in names}
    )
    with running_daemon(tmp_path, out, names) as daemon:
        for name in names:
            finished = daemon.wait_state(f"ext-{name}", "Finished", "Failed", timeout=60)
            assert (finished["state"], finished["lastExitCode"]) == ("Finished", 0), finished
        assert "already read" not in daemon.stderr()
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", names) == []
