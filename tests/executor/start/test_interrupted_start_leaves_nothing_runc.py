"""A start that cannot finish leaves nothing, with real runc: a bundle whose start cannot
succeed (rootfs missing, entrypoint missing or not executable), the executor SIGKILLed at
each point of a start, then started again on the same state dir, and the executor
stopped (SIGTERM) at each point of a start.

Whatever fails, the failing service ends with one event naming the cause, the executor
keeps serving the control socket and its other services, and nothing is left behind:
no container in `runc list`, no mount under the state dir, no cgroup dir, no child
process of the executor, no zombie. Needs root.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from extsvc.compiler.format.plan import cgroups_path
from extsvc.executor.errors import ExecutorError
from extsvc.executor.runtime import cgroups
from extsvc.executor.runtime.workspace import Workspace
from tests.executor.faults import FaultyRuntime
from tests.executor.realrunc import (
    IDLE,
    Daemon,
    alive,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def broken_entrypoint(name: str, entrypoint: str) -> str:
    return shell_service(name, "true", restart="never").replace(
        '"entrypoint": "/bin/sh"', f'"entrypoint": "{entrypoint}"'
    )


def remove_rootfs(rootfs: Path) -> None:
    shutil.rmtree(rootfs)


def plant_a_file_without_the_x_bit(rootfs: Path) -> None:
    script = rootfs / "bin" / "not-executable"
    script.write_text("#!/bin/sh\necho never runs\n")
    script.chmod(0o644)


# fault: (entrypoint, what is done to the compiled service's rootfs, the cause the event names)
BUNDLE_FAULTS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "rootfs-missing": ("/bin/sh", remove_rootfs, "rootfs {rootfs} does not exist"),
    "entrypoint-missing": (
        "/no/such/binary",
        lambda rootfs: None,
        'exec: "/no/such/binary": stat /no/such/binary: no such file or directory',
    ),
    "entrypoint-not-executable": (
        "/bin/not-executable",
        plant_a_file_without_the_x_bit,
        'exec: "/bin/not-executable": permission denied',
    ),
}


def executor_children(daemon: Daemon) -> list[psutil.Process]:
    assert daemon.process is not None
    return psutil.Process(daemon.process.pid).children(recursive=True)


def zombies(processes: list[psutil.Process]) -> list[int]:
    found = []
    for process in processes:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def outside_the_cgroup_of(name: str, processes: list[psutil.Process]) -> list[str]:
    """The processes not in service ``name``'s cgroup (gone ones are not counted)."""
    found = []
    for process in processes:
        try:
            cgroup = Path(f"/proc/{process.pid}/cgroup").read_text()
            command = " ".join(process.cmdline())
        except (OSError, psutil.Error):
            continue
        if f"/system/extensions/{name}" not in cgroup:
            found.append(f"{process.pid} {command}")
    return found


@pytest.mark.parametrize("fault", list(BUNDLE_FAULTS))
def test_a_bundle_that_cannot_start_fails_with_its_cause_and_leaves_nothing(
    tmp_path: Path, fault: str
) -> None:
    entrypoint, damage, cause = BUNDLE_FAULTS[fault]
    broken, neighbour = unique(fault), unique("neighbour")
    out, base = compile_plan(
        tmp_path,
        {broken: broken_entrypoint(broken, entrypoint), neighbour: shell_service(neighbour, IDLE)},
    )
    damage(base / broken)
    cause = cause.format(rootfs=base / broken)
    with running_daemon(tmp_path, out, [broken, neighbour]) as daemon:
        failed = daemon.wait_state(f"ext-{broken}", "Failed", timeout=30)
        event = failed["events"][0]["message"]
        assert event.startswith(f'Failed to start task "ext-{broken}": ')
        assert cause in event
        assert "level=error" not in event and "runc create failed" not in event  # no runc noise
        # Still serving: a start of the broken service answers with the same cause, the
        # other service stops and starts.
        with pytest.raises(ExecutorError) as again:
            daemon.client.request({"op": "start", "id": f"ext-{broken}", "wait": True})
        assert f"ext-{broken} [Failed]: " in str(again.value) and cause in str(again.value)
        assert daemon.control("stop", f"ext-{neighbour}")["ok"]
        assert daemon.control("start", f"ext-{neighbour}")["ok"]
        init = daemon.wait_state(f"ext-{neighbour}", "Running")["pid"]
        # Nothing of the failed starts is left while the executor runs: its only children
        # are the neighbour's container, none a zombie.
        wait_for(
            lambda: outside_the_cgroup_of(neighbour, executor_children(daemon)) == [],
            30,
            "the executor's children to be the neighbour's container only",
        )
        assert zombies(executor_children(daemon)) == []
        assert [t for t in traces(daemon.state_dir, [broken]) if broken in t] == []
        assert daemon.stop() == 0
    assert not alive(init)
    assert traces(tmp_path / "state", [broken, neighbour]) == []


# Where the first executor is SIGKILLed: (the runtime call, what the fake runtime does
# there, what the next executor reports having cleaned up). "abandon": the runtime,
# paused before runc runs, is killed with the executor (runc never runs); "release": it
# goes on after the executor died (runc runs for nobody); "returned": the kill comes
# right after runc returned, before the executor could act on it.
KILL_POINTS = {
    "before-create": ("create", "abandon", "mount "),  # overlay mounted, bundle written
    "create-in-flight": ("create", "release", "(created)"),
    "after-create": ("start", "abandon", "(created)"),  # created, never started
    "start-in-flight": ("start", "release", "(running)"),
    "after-start": ("start", "returned", "(running)"),
}


def kill_runtime_call(pid: int) -> None:
    """SIGKILL a runtime call and what it forked: it leads its own process group."""
    with contextlib.suppress(ProcessLookupError):
        assert os.getpgid(pid) == pid, "every runtime call runs in its own session"
        os.killpg(pid, signal.SIGKILL)


def init_pid(state_dir: Path, name: str) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int((state_dir / "bundles" / name / "init.pid").read_text())
    return None


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_mid_start_then_restart_leaves_nothing(tmp_path: Path, point: str) -> None:
    subcommand, mode, cleaned = KILL_POINTS[point]
    name = unique(f"kill-{point}")
    runtime = FaultyRuntime(tmp_path)
    if mode == "returned":
        runtime.mark_return(subcommand)
        reached = functools.partial(runtime.returned, subcommand)
    else:
        runtime.pause(subcommand)
        reached = functools.partial(lambda: runtime.paused_pid(subcommand) is not None)
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    state = tmp_path / "state"
    with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as first:
        wait_for(reached, 30, f"the start to reach {point}")
        first.kill()
        paused = runtime.paused_pid(subcommand)
        if mode == "abandon" and paused is not None:
            kill_runtime_call(paused)
        runtime.release(subcommand)
        (runtime.dir / f"mark-return-{subcommand}").unlink(missing_ok=True)
        if paused is not None:
            wait_for(lambda: not alive(paused), 30, f"the orphaned runc {subcommand} to end")
        assert traces(state, [name]) != [] or mode == "abandon"
        old_init = init_pid(state, name)
        if old_init is not None and mode != "abandon":
            assert alive(old_init), "the first run's container outlives its executor"
        reported_from = len(first.stderr())
        with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as second:
            running = second.wait_state(f"ext-{name}", "Running", timeout=30)
            report = second.stderr()[reported_from:]
            assert "cleaned up after a previous executor: " in report
            assert cleaned in report
            if old_init is not None:
                assert running["pid"] != old_init
                assert not alive(old_init)
            # The executor's children: the new container only, no zombie.
            wait_for(
                lambda: outside_the_cgroup_of(name, executor_children(second)) == [],
                30,
                "no process but the new container",
            )
            assert zombies(executor_children(second)) == []
            assert second.stop() == 0
        assert traces(state, [name]) == []
        assert not cgroups.processes(f"/system/extensions/{name}")


# Where a SIGTERM reaches the executor during a start: (how the service's container is
# created, what the runtime does). A "head start": the service waits for nothing, its
# create begins before the event loop exists; "waiting": it waits for a path that never
# comes, its container is created while it waits; "at once": its condition is met, the
# event loop creates and starts it. "pause SUB": the runtime call waits before runc
# runs; "hold create": `runc create` waits in its middle (cgroup made, init started,
# runc's state not yet written), three services at once; "returned SUB": runc has
# returned; "term SUB": the call sends the SIGTERM itself as runc begins; "term-after
# SUB": right after runc returned.
STOP_POINTS = {
    "head-start-before-create": ("head start", "pause create"),
    "head-start-during-create": ("head start", "hold create"),
    "head-start-after-create": ("head start", "pause start"),
    "waiting-before-create": ("waiting", "pause create"),
    "waiting-during-create": ("waiting", "hold create"),
    "waiting-after-create": ("waiting", "returned create"),
    "before-create": ("at once", "pause create"),
    "during-create": ("at once", "hold create"),
    "after-create": ("at once", "pause start"),
    "during-start": ("at once", "term start"),
    "right-after-start": ("at once", "term-after start"),
}


def left_behind(tmp: Path, names: list[str]) -> list[str]:
    """Everything a stopped executor must not leave: containers (runc's list and its
    state dir), mounts, bundles, cgroup dirs in every hierarchy, processes."""
    state = tmp / "state"
    found = traces(state, names)
    runc_root = state / "runc"
    if runc_root.exists():
        found += [f"runc state {p}" for p in runc_root.iterdir()]
    found += [f"bundle or rootfs of {n}" for n in sorted(Workspace(state).leftover_names())]
    for name in names:
        found += [f"process {pid} in {name}" for pid in cgroups.processes(cgroups_path(name))]
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        if str(tmp) in command and alive(process.info["pid"]):
            found.append(f"process {process.info['pid']} {command}")
    return found


@pytest.mark.parametrize("point", list(STOP_POINTS))
def test_sigterm_mid_start_exits_0_and_leaves_nothing(tmp_path: Path, point: str) -> None:
    kind, how = STOP_POINTS[point]
    action, subcommand = how.split()
    runtime = FaultyRuntime(tmp_path)
    names = [unique(f"stop-{i}") for i in range(3 if action == "hold" else 1)]
    depends = {
        "head start": None,
        "waiting": [{"path": str(tmp_path / "never")}],
        "at once": [{"path": str(tmp_path)}],
    }[kind]
    out, _ = compile_plan(tmp_path, {n: shell_service(n, IDLE, depends=depends) for n in names})
    reached: Callable[[], bool] | None = None
    if action == "returned":
        runtime.mark_return(subcommand)
        reached = lambda: runtime.returned(subcommand)  # noqa: E731
    elif action == "pause":
        runtime.pause(subcommand)
        reached = lambda: runtime.paused_pid(subcommand) is not None  # noqa: E731
    elif action == "hold":
        runtime.hold_in_create()
        # Every create held, each with its lingering process in the cgroup.
        reached = lambda: len(runtime.held_in_create()) == len(runtime.lingering()) == len(names)  # noqa: E731
    elif action == "term":
        runtime.term(subcommand)
    else:
        runtime.term_after(subcommand)
    daemon = Daemon(tmp_path, out, names, "--runtime", str(runtime.path))
    try:
        daemon.start(answering=False)
        assert daemon.process is not None
        if reached is not None:
            wait_for(reached, 30, f"the start to reach {point}")
            daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(30) == 0, daemon.stderr()
        assert "Traceback" not in daemon.stderr()
        # Before anything held is released: a runtime call left waiting would run runc
        # for nobody once released.
        assert left_behind(tmp_path, names) == []
        assert not any(alive(pid) for pid in runtime.lingering())
    finally:
        runtime.release(subcommand)
        runtime.release_create()
        daemon.force_cleanup()
