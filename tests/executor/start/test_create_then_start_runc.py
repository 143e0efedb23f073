"""runc create + runc start, no resident runc (issue 12), with real runc. Needs root.

The container writes straight into the executor's one pipe (runc passes its stdio
through), a service whose spec is final is created while it waits, and a created
container that never starts is cleaned up by a stop and by the next executor.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.executor.realrunc import (
    IDLE,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def runc_state(state_dir: Path, container_id: str) -> str:
    listed = subprocess.run(
        ["runc", "--root", str(state_dir / "runc"), "state", container_id],
        capture_output=True, text=True,
    )  # fmt: skip
    if listed.returncode != 0:
        return "absent"
    return str(json.loads(listed.stdout)["status"])


def compile_gated(tmp: Path, name: str, script: str = IDLE) -> tuple[Path, Path]:
    """One service that waits for a file (absent until the test creates it): (OUT, file)."""
    flag = tmp / "flag"
    out, _ = compile_plan(tmp, {name: shell_service(name, script, depends=[{"path": str(flag)}])})
    return out, flag


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


def test_stdout_and_stderr_keep_their_exact_interleaving(tmp_path: Path) -> None:
    name = unique("interleave")
    script = (
        'i=0; while [ $i -lt 100 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; ' + IDLE
    )
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        wait_for(lambda: len(daemon.logs(f"ext-{name}")) >= 200, 15, "200 lines")
        expected = [f"{stream} {i}" for i in range(100) for stream in ("out", "err")]
        assert daemon.logs(f"ext-{name}")[:200] == expected
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


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


def test_stopping_a_created_never_started_service_leaves_nothing(tmp_path: Path) -> None:
    name = unique("neverstarted")
    out, _never_created = compile_gated(tmp_path, name)
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid_file = daemon.state_dir / "bundles" / name / "init.pid"
        wait_for(lambda: runc_state(daemon.state_dir, f"ext-{name}") == "created", 10, "created")
        wait_for(pid_file.exists, 10, "the init's PID file")
        init = int(pid_file.read_text())
        daemon.control("stop", f"ext-{name}")
        assert daemon.state(f"ext-{name}") == "Skipped"
        assert traces(daemon.state_dir, [name]) == []
        # The stopped init was reaped by the executor: not even a zombie is left.
        assert not psutil.pid_exists(init)
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_a_created_container_left_by_a_sigkilled_executor_is_cleaned_up(
    tmp_path: Path,
) -> None:
    name = unique("createdorphan")
    out, _never_created = compile_gated(tmp_path, name)
    with running_daemon(tmp_path, out, [name]) as first:
        wait_for(lambda: runc_state(first.state_dir, f"ext-{name}") == "created", 10, "created")
        first.kill()
        assert runc_state(first.state_dir, f"ext-{name}") == "created"
        with running_daemon(tmp_path, out, [name]) as second:
            wait_for(lambda: f"container ext-{name} (created)" in second.stderr(), 10, "recovery")
            assert second.stop() == 0
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
