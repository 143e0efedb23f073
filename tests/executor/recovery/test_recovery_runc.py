"""What a previous executor left behind is cleaned up by the next one, and a second executor never
touches a running one's services, with real runc. Needs root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.executor.realrunc import (
    IDLE,
    SLEEP_LOOP,
    alive,
    compile_gated,
    compile_plan,
    runc_state,
    running_daemon,
    running_pid,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


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


def test_second_executor_on_the_same_state_dir_refuses(tmp_path: Path) -> None:
    name = unique("single")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        second = subprocess.run(daemon.argv(), capture_output=True, text=True, timeout=30)
        assert second.returncode == 3
        assert "is using the state dir" in second.stderr
        assert "Traceback" not in second.stderr
        assert daemon.state(f"ext-{name}") in ("Running", "Preparing", "Waiting")


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


def test_a_second_executor_never_touches_the_first_ones_service(tmp_path: Path) -> None:
    name = unique("shared")
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    out1, _ = compile_plan(first_dir, {name: shell_service(name, SLEEP_LOOP)})
    out2, _ = compile_plan(second_dir, {name: shell_service(name, SLEEP_LOOP, restart="never")})
    with running_daemon(first_dir, out1, [name]) as first:
        pid = running_pid(first, f"ext-{name}")
        # No names to clean up for the second: its teardown must not empty the shared cgroup.
        with running_daemon(second_dir, out2, []) as second:
            failed = second.wait_state(f"ext-{name}", "Failed")
            message = failed["events"][0]["message"]
            assert f"cgroup /system/extensions/{name} already holds processes" in message
            assert str(pid) in message
            assert psutil.pid_exists(pid)
            assert second.stop() == 0
        # The second executor came and went: the first one's container runs on, untouched.
        assert first.state(f"ext-{name}") == "Running"
        assert running_pid(first, f"ext-{name}") == pid
        assert first.stop() == 0


def test_processes_only_their_cgroup_still_names_are_killed_and_the_cgroup_removed(
    tmp_path: Path,
) -> None:
    """runc's record of a container gone (a create killed before runc wrote its state):
    its processes are found through the cgroup, killed and waited for before the
    cgroup is removed, and the service then runs in a fresh one."""
    name = unique("stray")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with running_daemon(tmp_path, out, [name]) as first:
        pid = first.wait_state(f"ext-{name}", "Running")["pid"]
        first.kill()
        shutil.rmtree(first.state_dir / "runc" / f"ext-{name}")
        assert psutil.pid_exists(pid)
        with running_daemon(tmp_path, out, [name]) as second:
            new_pid = second.wait_state(f"ext-{name}", "Running")["pid"]
            assert not alive(pid) and new_pid != pid
            cleaned = f"cleaned up after a previous executor: cgroup /system/extensions/{name}"
            assert cleaned in second.stderr()
            assert "NOT removed" not in second.stderr()
            assert second.stop() == 0
        assert traces(tmp_path / "state", [name]) == []
