"""The head start: what waits for nothing is created before the event loop.

`extsvc run` spawns `runc create` for every service without dependencies before it
imports asyncio and the supervisor (executor.daemon.startup); the runtime takes each over
as its own create. These tests use real runc through a wrapper that records when the
executor spawned each call (tests.executor.faults), compared with when the daemon,
its event loop running, wrote <state>/run.json: a head start comes before, a create by
a runner after. Both are the kernel's records (a process's start time in clock ticks,
a file's change time), so a loaded host does not blur them; a tick is 10 ms, and a
head start precedes the loop by at least the asyncio import (~25 ms).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.executor.faults import FaultyRuntime
from tests.executor.realrunc import (
    EXTSVC,
    FAST_OPTIONS,
    IDLE,
    Daemon,
    compile_plan,
    remove_traces,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc
TICK = 0.01  # the resolution of a process's start time (/proc/PID/stat, 100 Hz)


def creates_after_the_loop_began(runtime: FaultyRuntime, loop_began: float) -> list[bool]:
    """For each `runc create`: whether it was spawned once the event loop ran."""
    return [at >= loop_began - TICK for call, at in runtime.calls() if call == "create"]


def test_a_service_that_waits_for_nothing_is_created_before_asyncio_is_imported(
    tmp_path: Path,
) -> None:
    root, dependent = unique("headroot"), unique("headdep")
    out, _ = compile_plan(
        tmp_path,
        {
            root: shell_service(root, f"echo up; {IDLE}"),
            dependent: shell_service(
                dependent, f"echo dependent; {IDLE}", depends=[{"service": f"ext-{root}"}]
            ),
        },
    )
    runtime = FaultyRuntime(tmp_path)
    with running_daemon(tmp_path, out, [root, dependent], "--runtime", str(runtime.path)) as d:
        loop_began = (d.state_dir / "run.json").stat().st_ctime
        d.wait_state(f"ext-{root}", "Running", timeout=30)
        d.wait_state(f"ext-{dependent}", "Running", timeout=30)
        wait_for(lambda: d.logs(f"ext-{root}") == ["up"], 30, "the root's line")
        assert d.stop() == 0
    # The root's create, before the loop; the dependent's, by its runner, on the loop.
    assert creates_after_the_loop_began(runtime, loop_began) == [False, True]
    assert traces(tmp_path / "state", [root, dependent]) == []


def test_a_stop_before_the_loop_runs_discards_the_head_start(tmp_path: Path) -> None:
    name = unique("headstop")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, f"echo ran; {IDLE}")})
    # The runtime itself SIGTERMs the executor as the head start spawns it: the signal
    # waits (blocked) until the loop handles it, and the service is never started.
    runtime = FaultyRuntime(tmp_path).term("create")
    daemon = Daemon(tmp_path, out, [name], "--runtime", str(runtime.path))
    try:
        run = subprocess.run(daemon.argv(), capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "Started task" not in run.stderr
        assert "all services stopped" in run.stderr
        assert [call for call, _ in runtime.calls()][:1] == ["create"]
        assert "start" not in [call for call, _ in runtime.calls()]
        assert traces(tmp_path / "state", [name]) == []
    finally:
        remove_traces(tmp_path / "state", [name])


def test_a_state_dir_with_leftovers_is_cleaned_first_and_gets_no_head_start(
    tmp_path: Path,
) -> None:
    name = unique("headleft")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    runtime = FaultyRuntime(tmp_path)
    with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as first:
        first.wait_state(f"ext-{name}", "Running", timeout=30)
        first_loop = (first.state_dir / "run.json").stat().st_ctime
        first.kill()
        first.process.wait(30)  # type: ignore[union-attr]
        with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as second:
            second_loop = (second.state_dir / "run.json").stat().st_ctime
            second.wait_state(f"ext-{name}", "Running", timeout=30)
            cleaned = f"cleaned up after a previous executor: container ext-{name} (running)"
            assert cleaned in second.stderr()
            assert second.stop() == 0
    (first_create, second_create) = [at for call, at in runtime.calls() if call == "create"]
    assert first_create < first_loop  # the first executor's head start
    assert second_create >= second_loop - TICK  # after recovery, on the loop
    assert traces(tmp_path / "state", [name]) == []


def test_a_relative_state_dir_runs_containers(tmp_path: Path) -> None:
    name = unique("relstate")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, "echo relative", restart="never")})
    argv = [*EXTSVC, "run", str(out), "--state-dir", "state", "--log-dir", "logs", *FAST_OPTIONS]
    try:
        daemon = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        log = tmp_path / "logs" / f"ext-{name}.log"
        wait_for(lambda: log.exists() and "relative" in log.read_text(), 30, "the line")
        daemon.terminate()
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr
        assert f"ext-{name} [Finished]" in stderr
    finally:
        remove_traces(tmp_path / "state", [name])
    assert traces(tmp_path / "state", [name]) == []
