"""Stop and shutdown: the grace, the escalation to SIGKILL, the order, and what a shutdown waits for
(fake clock, fake runtime)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from extsvc.compiler.format.servicepolicy import ServicePolicy
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script, ScriptedRuntime
from extsvc.executor.supervise.supervisor import Supervisor, SupervisorSettings
from tests.executor.fakes import make_clock, make_plan, make_service
from tests.executor.world import FULL_HOST, World, run


def test_stop_escalates_to_sigkill_after_the_timeout(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a"),
            scripts={"ext-a": [Script(None, ignore_sigterm=True)]},
        )
        world.supervisor.start_all()
        await settle()
        stopping = asyncio.ensure_future(world.supervisor.runners["ext-a"].stop())
        await world.clock.advance(9)
        assert not stopping.done()
        assert world.state("ext-a") is ServiceState.STOPPING
        await world.clock.advance(1)
        await stopping
        assert world.runtime.containers[0].signals == [signal.SIGTERM, signal.SIGKILL]
        assert world.state("ext-a") is ServiceState.FINISHED
        assert any(m.startswith("Sending SIGKILL") for m in world.messages("ext-a"))

    scenario()


def test_stop_while_waiting_is_skipped(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", paths=("/nonexistent/never",)))
        world.supervisor.start_all()
        await settle()
        await world.supervisor.runners["ext-a"].stop()
        assert world.state("ext-a") is ServiceState.SKIPPED
        assert world.runtime.launched("ext-a") == 0

    scenario()


def test_an_error_in_cleanup_fails_the_service_but_not_the_shutdown(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a"), scripts={"ext-a": [Script(None)]})

        async def broken_cleanup(service: Any) -> None:
            raise OSError(16, "Device or resource busy")

        world.runtime.cleanup = broken_cleanup  # type: ignore[method-assign]
        world.supervisor.start_all()
        await settle()
        await world.supervisor.shutdown()
        assert world.state("ext-a") is ServiceState.FAILED
        assert "internal error: OSError(16" in world.messages("ext-a")[-1]

    scenario()


def test_a_stop_ends_a_crash_loop_whose_create_outlasts_the_restart_interval(
    tmp_path: Path,
) -> None:
    """On a loaded host (bench/soak.py makes one) a crash-looping service's
    create-while-waiting took longer than its restart interval, so the wait after it was
    already over, and the container of the next run was already dead when the runner
    looked: a stop requested meanwhile lost both races (the finished work was preferred)
    and the loop went on forever; `extsvc reload` and the shutdown waited for it."""

    class SlowCreates(ScriptedRuntime):
        async def create(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.02)  # longer than the 10 ms restart interval
            return await super().create(*args, **kwargs)

    @run
    async def scenario() -> None:
        runtime = SlowCreates(make_clock(), {"ext-a": [Script(1)]})  # exits at once, code 1
        supervisor = Supervisor(
            make_plan(make_service("a", "always")),
            runtime,
            SystemClock(),
            SupervisorSettings(
                FULL_HOST,
                RunnerSettings(restart=RestartTiming(interval=0.01), stop_timeout=1.0),
                log_dir=tmp_path,
            ),
        )
        supervisor.start_all()
        runner = supervisor.runners["ext-a"]
        for _ in range(20):  # a stop at every moment of the loop
            while runner.runs < 3:
                await asyncio.sleep(0.001)
            await asyncio.wait_for(runner.stop(), 5)
            assert runner.state is ServiceState.FINISHED
            runner.runs = 0
            runner.start()
        await asyncio.wait_for(supervisor.shutdown(), 5)

    scenario()


def test_a_shutdown_says_what_it_waits_for_and_kill_now_drops_grace_and_order(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("web", services=("ext-db",)),
            make_service("db"),
            make_service("idle", paths=(str(tmp_path / "never"),)),
            scripts={
                "ext-web": [Script(None, ignore_sigterm=True)],
                "ext-db": [Script(None, ignore_sigterm=True)],
            },
        )
        world.supervisor.start_all()
        await settle()
        shutdown = asyncio.ensure_future(world.supervisor.shutdown())
        await settle()
        await world.clock.advance(3)
        web_pid = world.supervisor.runners["ext-web"].container.pid  # type: ignore[union-attr]
        assert world.supervisor.stop_status() == [
            "ext-db: waits for ext-web to stop first",
            f"ext-web (PID {web_pid}): SIGTERM sent 3s ago, SIGKILL in 7s",
        ]  # ext-idle never ran: it stopped at once
        world.supervisor.kill_now()
        await settle()
        await shutdown  # no clock advance needed: neither grace nor order is waited for
        signals = {c.id: c.signals for c in world.runtime.containers}
        assert signals == {
            "ext-web": [signal.SIGTERM, signal.SIGKILL],
            "ext-db": [signal.SIGKILL],  # never asked to stop gracefully: killed at once
            "ext-idle": [],  # created ahead while it waits, never started: deleted
        }
        assert sorted(world.runtime.cleanups) == ["ext-db", "ext-idle", "ext-web"]
        assert world.messages("ext-db")[-2].endswith(": the executor was told to kill at once")
        assert world.supervisor.stop_status() == []

    scenario()


def test_stop_timeout_of_the_service_overrides_the_executors(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        exporter = make_service("nfs", policy=ServicePolicy(stop_timeout=30))
        world = World(
            tmp_path,
            exporter,
            scripts={"ext-nfs": [Script(exit_code=None, ignore_sigterm=True)]},
        )
        world.supervisor.start_all()
        await settle()
        runner = world.supervisor.runners["ext-nfs"]
        task = asyncio.ensure_future(runner.stop())
        await world.clock.advance(29)  # the executor's own 10 s is long over
        assert world.runtime.containers[0].signals == [signal.SIGTERM]
        await world.clock.advance(1)
        await task
        assert world.runtime.containers[0].signals == [signal.SIGTERM, signal.SIGKILL]
        assert "still running 30s after SIGTERM" in world.messages("ext-nfs")[-2]
        assert runner.state is ServiceState.FINISHED

    scenario()
