"""The wall clock stepped a year either way at every point where a service waits:
nothing expires early, nothing stalls. Fake clock and fake runtime; the same
with the real executor and real runc is in test_wall_clock_step_runc.py.

A step is what time sync does at boot on a machine whose RTC is dead (a year forward)
or ahead (back). Each test steps ``VirtualClock.step_wall`` while the runner waits; a runner
that did its arithmetic on the wall clock fails early on +1y and never wakes on -1y.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

from extsvc.compiler.format.plan import ServicePlan
from extsvc.compiler.format.servicepolicy import RestartLimit, ServicePolicy
from extsvc.executor.cli.servicetext import services_table
from extsvc.executor.daemon import status
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.health import Health
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script, ScriptedRuntime
from tests.executor.fakes import NOT_READY, gaps, health_check, make_service
from tests.executor.world import World

YEAR = 365 * 24 * 3600.0
STEPS = pytest.mark.parametrize("step", [YEAR, -YEAR], ids=["plus-1y", "minus-1y"])
# Real seconds a scenario may take: a runner that spins (a deadline always past) or
# waits for ever fails the test instead of hanging it.
REAL_TIME_BOUND = 20.0


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(test(), REAL_TIME_BOUND))

    return wrapper


class SteppingRuntime(ScriptedRuntime):
    """Steps the wall clock by ``step`` inside chosen runtime calls: between the moment
    a runner reads the time before a call and the moment it reads it after."""

    step = 0.0
    step_in_creates = False
    step_in_check: int | None = None  # the index of the health check to step in

    async def create(self, service: ServicePlan, spec: dict[str, Any], on_output: Any) -> Any:
        if self.step_in_creates:
            self.clock.step_wall(self.step)
        return await super().create(service, spec, on_output)

    async def exec(
        self,
        container: Any,
        argv: Sequence[str],
        timeout: float,
        process: dict[str, Any] | None = None,
    ) -> ExecResult:
        if len(self.execs) == self.step_in_check:
            self.clock.step_wall(self.step)
        return await super().exec(container, argv, timeout, process)


def stepping_world(tmp_path: Path, step: float, *services: Any, **kw: Any) -> World:
    world = World(tmp_path, *services, runtime=SteppingRuntime, **kw)
    world.runtime.step = step
    return world


@STEPS
def test_start_timeout_waiting_for_a_path_neither_expires_early_nor_stalls(
    tmp_path: Path, step: float
) -> None:
    @run
    async def scenario() -> None:
        waiting = make_service(
            "late",
            paths=(str(tmp_path / "never"),),
            policy=ServicePolicy(start_timeout=120),
        )
        world = World(tmp_path, waiting)
        world.supervisor.start_all()
        await world.clock.advance(30)
        world.clock.step_wall(step)
        # The path condition is checked each second: every check sees the step.
        await world.clock.advance(89)
        assert world.state("ext-late") is ServiceState.WAITING
        await world.clock.advance(1)
        assert world.state("ext-late") is ServiceState.FAILED
        assert world.messages("ext-late")[-1].startswith("Start timeout (2m) reached")
        await world.supervisor.shutdown()

    scenario()


@STEPS
def test_a_dependency_met_after_the_step_still_starts_its_dependent(
    tmp_path: Path, step: float
) -> None:
    @run
    async def scenario() -> None:
        flag = tmp_path / "ready"
        waiting = make_service("app", paths=(str(flag),), policy=ServicePolicy(start_timeout=600))
        world = World(tmp_path, waiting)
        world.supervisor.start_all()
        await world.clock.advance(10)
        world.clock.step_wall(step)
        await world.clock.advance(10)
        flag.touch()
        await world.clock.advance(1)
        assert world.state("ext-app") is ServiceState.RUNNING
        assert world.runtime.launches == [("ext-app", world.clock.time)]
        await world.supervisor.shutdown()

    scenario()


@STEPS
@pytest.mark.parametrize(
    ("timing", "delays"),
    [
        (RestartTiming(interval=5.0), [5.0] * 6),
        (RestartTiming(interval=1.0, max_interval=8.0), [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]),
    ],
    ids=["interval", "backoff"],
)
def test_restarts_keep_their_interval_and_backoff(
    tmp_path: Path, step: float, timing: RestartTiming, delays: list[float]
) -> None:
    @run
    async def scenario() -> None:
        world = stepping_world(
            tmp_path,
            step,
            make_service("loop"),
            scripts={"ext-loop": [Script(1)]},
            settings=RunnerSettings(restart=timing),
        )
        # Each restart's container is created during its restart delay: the wall clock
        # jumps between the runner's reading before the create and the one after.
        assert isinstance(world.runtime, SteppingRuntime)
        world.runtime.step_in_creates = True
        world.supervisor.start_all()
        await world.clock.advance(sum(delays))
        launches = [t for _, t in world.runtime.launches]
        assert gaps(launches) == delays
        assert world.state("ext-loop") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


@STEPS
def test_health_checks_keep_their_interval_and_timeout(tmp_path: Path, step: float) -> None:
    @run
    async def scenario() -> None:
        check = health_check(interval=10, timeout=3, retries=5)
        world = stepping_world(
            tmp_path, step, make_service("db", policy=ServicePolicy(health=check))
        )
        assert isinstance(world.runtime, SteppingRuntime)
        world.runtime.step_in_check = 1  # the second check
        world.runtime.health["ext-db"] = NOT_READY
        world.supervisor.start_all()
        await world.clock.advance(40)
        assert gaps(world.runtime.checks("ext-db")) == [10.0] * 4
        # The stepped check failed on its exit code, not on a timeout it never reached.
        assert world.supervisor.runners["ext-db"].last_health_message == ("exit code 1: not ready")
        await world.supervisor.shutdown()

    scenario()


@STEPS
def test_the_start_period_lasts_its_length(tmp_path: Path, step: float) -> None:
    @run
    async def scenario() -> None:
        check = health_check(interval=10, timeout=3, retries=1, start_period=30)
        world = World(tmp_path, make_service("db", policy=ServicePolicy(health=check)))
        world.runtime.health["ext-db"] = NOT_READY
        world.supervisor.start_all()
        await world.clock.advance(5)
        world.clock.step_wall(step)
        runner = world.supervisor.runners["ext-db"]
        await world.clock.advance(24)  # checks at 10 and 20: inside the start period
        assert runner.health is Health.UNKNOWN
        await world.clock.advance(1)  # the check at 30 counts
        assert runner.health is Health.FAIL
        await world.supervisor.shutdown()

    scenario()


@STEPS
def test_the_restart_limit_window_is_its_length(tmp_path: Path, step: float) -> None:
    @run
    async def scenario() -> None:
        # Failures every 5 s (SETTINGS): 3 in 10 s is over "2 in 12s", 2 in 10 s never
        # over "2 in 9s". A step before each create lands between two failures.
        tight = make_service(
            "tight", policy=ServicePolicy(restart_limit=RestartLimit(count=2, window=12))
        )
        loose = make_service(
            "loose", policy=ServicePolicy(restart_limit=RestartLimit(count=2, window=9))
        )
        scripts = {"ext-tight": [Script(1)], "ext-loose": [Script(1)]}
        world = stepping_world(tmp_path, step, tight, loose, scripts=scripts)
        assert isinstance(world.runtime, SteppingRuntime)
        world.runtime.step_in_creates = True
        world.supervisor.start_all()
        await world.clock.advance(9)
        assert world.state("ext-tight") is ServiceState.WAITING
        await world.clock.advance(1)
        assert world.runtime.launched("ext-tight") == 3
        assert world.state("ext-tight") is ServiceState.FAILED
        assert world.messages("ext-tight")[-1].startswith("restart limit reached")
        await world.clock.advance(60)
        assert world.runtime.launched("ext-loose") == 15
        assert world.state("ext-loose") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


@STEPS
def test_the_stop_grace_lasts_its_length(tmp_path: Path, step: float) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("stubborn"),
            scripts={"ext-stubborn": [Script(exit_code=None, ignore_sigterm=True)]},
        )
        world.supervisor.start_all()
        await settle()
        stopping = asyncio.ensure_future(world.supervisor.runners["ext-stubborn"].stop())
        await world.clock.advance(4)
        world.clock.step_wall(step)
        await world.clock.advance(5.9)
        assert world.runtime.containers[0].signals == [signal.SIGTERM]
        await world.clock.advance(0.1)
        await stopping
        assert world.runtime.containers[0].signals == [signal.SIGTERM, signal.SIGKILL]
        assert "still running 10s after SIGTERM" in world.messages("ext-stubborn")[-2]

    scenario()


@STEPS
def test_ages_shown_to_people_do_not_jump_with_the_wall_clock(tmp_path: Path, step: float) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("app"))
        world.supervisor.start_all()
        await world.clock.advance(30)
        world.clock.step_wall(step)
        world.clock.suspended = 60.0  # a minute in suspend counts in an age
        runner = world.supervisor.runners["ext-app"]
        summary = status.summary(runner)
        assert summary["lastChangeAgo"] == 90.0
        table = services_table([summary], world.clock.wall())
        assert "1m30s ago" in table
        # The labels are the wall clock's: what the clock said when it happened.
        assert summary["lastChange"] < "2024"
        await world.supervisor.shutdown()

    scenario()
