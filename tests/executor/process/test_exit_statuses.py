"""One owner of every exit status: spawned and adopted children report their
own exit code, strays are reaped, and no status is ever read by someone else."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.process import reaper
from extsvc.executor.process.helpers import run_process
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.protocol import ExecResult, OutputSink
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import ServiceState
from extsvc.executor.supervise.supervisor import Supervisor, SupervisorSettings
from tests.executor.fakes import make_plan, make_service


def test_exit_codes_and_signals_are_reported_as_the_shell_does() -> None:
    async def scenario() -> list[int]:
        return [
            (await run_process(["sh", "-c", script])).returncode
            for script in ("exit 0", "exit 3", "kill -TERM $$", "kill -KILL $$")
        ]

    assert asyncio.run(scenario()) == [0, 3, 128 + signal.SIGTERM, 128 + signal.SIGKILL]


def test_a_missing_program_is_code_127_and_a_timeout_kills() -> None:
    async def scenario() -> tuple[int, int]:
        missing = await run_process(["/no/such/program"])
        slow = await run_process(["sleep", "30"], timeout=0.1)
        return missing.returncode, slow.returncode

    assert asyncio.run(scenario()) == (127, -9)


def test_a_timeout_kills_the_group_even_when_its_before_kill_hook_is_cancelled() -> None:
    """A caller's own bound (the health check's) cancelled the hook that waits for what
    the helper started: the helper then stayed, and so did the check it ran."""

    async def scenario() -> tuple[int, bool]:
        hooked = asyncio.Event()
        helper: list[reaper.Child] = []

        async def before_kill(child: reaper.Child) -> None:
            helper.append(child)
            hooked.set()
            await asyncio.sleep(60)  # waiting for a PID file that comes late

        run = asyncio.ensure_future(run_process(["sleep", "60"], 0.1, before_kill=before_kill))
        await hooked.wait()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        code = await asyncio.wait_for(helper[0].exited, 5)
        return code, run.cancelled()

    assert asyncio.run(scenario()) == (128 + signal.SIGKILL, True)


def test_output_is_stdout_and_stderr_merged() -> None:
    completed = asyncio.run(run_process(["sh", "-c", "echo out; echo err >&2"]))
    assert completed.output.splitlines() == ["out", "err"]


def test_an_orphan_is_a_stray_reaped_but_an_owned_child_is_never_stolen() -> None:
    async def scenario() -> tuple[list[int], int, int]:
        children = reaper.children()
        owned = children.spawn(["sh", "-c", "sleep 0.2; exit 7"])
        stray = os.fork()  # not spawned through Children: nobody waits for it
        if stray == 0:
            os._exit(0)
        # Both end before the loop runs again (time.sleep does not yield to it).
        while not _is_zombie(stray) or not _is_zombie(owned.pid):
            time.sleep(0.01)
        reaped = children.reap_strays()
        return reaped, stray, await owned.exited

    reaped, stray, owned_code = asyncio.run(scenario())
    assert stray in reaped
    assert owned_code == 7


def test_strays_wait_while_a_child_is_being_adopted() -> None:
    async def scenario() -> tuple[list[int], list[int], int]:
        children = reaper.children()
        stray = os.fork()
        if stray == 0:
            os._exit(0)
        while not _is_zombie(stray):
            time.sleep(0.01)
        with children.holding_strays():
            held = children.reap_strays()
        return held, children.reap_strays(), stray

    held, after, stray = asyncio.run(scenario())
    assert held == [] and after == [stray]


def test_500_children_ending_together_each_report_their_own_status() -> None:
    """No status is read by anyone but its owner: a periodic reaper would steal statuses
    another waiter is waiting for."""

    async def scenario() -> list[int]:
        children = reaper.children()
        children.install()
        try:
            runs = [run_process(["true"]) for _ in range(500)]
            return [completed.returncode for completed in await asyncio.gather(*runs)]
        finally:
            children.uninstall()

    codes = asyncio.run(scenario())
    assert codes == [0] * 500


class ProcessRuntime:
    """A runtime whose "containers" are real short processes, reaped as runc inits are."""

    def __init__(self) -> None:
        self.cleanups = 0

    async def create(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> ProcessContainer:
        return ProcessContainer(service.id, spec["process"]["args"])

    async def start(self, container: Any) -> None:
        container.child = reaper.children().spawn(container.argv)
        container.pid = container.child.pid

    async def exec(self, container: Any, argv: Any, timeout: float) -> ExecResult:
        raise NotImplementedError

    async def cleanup(self, service: ServicePlan) -> None:
        self.cleanups += 1


class ProcessContainer:
    def __init__(self, container_id: str, argv: list[str]) -> None:
        self.id = container_id
        self.argv = argv
        self.pid = 0
        self.child: reaper.Child | None = None

    def signal(self, signum: int) -> None:
        if self.child is not None:
            self.child.send_signal(signum)

    async def wait(self) -> int | None:
        assert self.child is not None
        return await self.child.exited


def test_500_one_shots_exiting_0_all_finish(tmp_path: Path) -> None:
    services = [
        make_service(f"s{i}", restart="never", spec={"process": {"args": ["true"]}})
        for i in range(500)
    ]

    async def scenario() -> dict[ServiceState, int]:
        reaper.children().install()
        supervisor = Supervisor(
            make_plan(*services),
            ProcessRuntime(),
            SystemClock(),
            SupervisorSettings(
                HostFacts(bounding_capabilities=frozenset(), can_lower_oom_score=True),
                RunnerSettings(restart=RestartTiming(0.1)),
                log_dir=tmp_path,
            ),
        )
        supervisor.start_all()
        runners = list(supervisor.runners.values())
        while any(r.state not in (ServiceState.FINISHED, ServiceState.FAILED) for r in runners):
            await supervisor.board.next_change().wait()
        await supervisor.shutdown()
        reaper.children().uninstall()
        counts: dict[ServiceState, int] = {}
        for runner in runners:
            counts[runner.state] = counts.get(runner.state, 0) + 1
        return counts

    assert asyncio.run(scenario()) == {ServiceState.FINISHED: 500}


# Modules of commands that never run in the daemon (no reaper there to compete with):
# bootunit asks `systemctl --version` for `extsvc systemd-unit`.
NOT_IN_THE_DAEMON = {"bootunit.py"}


def test_no_asyncio_subprocess_in_the_executor() -> None:
    """Its child watcher would be a second reader of exit statuses."""
    executor = Path(__file__).resolve().parents[3] / "executor"
    offenders = [
        path.name
        for path in executor.glob("*.py")
        if ("create_subprocess_" in path.read_text() or "subprocess.run(" in path.read_text())
        and path.name not in NOT_IN_THE_DAEMON
    ]
    assert offenders == []


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
