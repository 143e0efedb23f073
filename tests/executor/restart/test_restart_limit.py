"""x-extsvc restart limits: too many failures within the window fail the service for good, until it
is started again (fake clock, fake runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.compiler.format.servicepolicy import RestartLimit, ServicePolicy
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


def test_restart_limit_fails_for_good_until_started_again(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        limited = make_service(
            "flaky", policy=ServicePolicy(restart_limit=RestartLimit(count=5, window=60))
        )
        world = World(tmp_path, limited, scripts={"ext-flaky": [Script(1)]})
        world.supervisor.start_all()
        # Runs fail at 0, 5, ..., 25: the sixth failure is more than 5 within 1m.
        await world.clock.advance(24)
        assert world.state("ext-flaky") is ServiceState.WAITING
        await world.clock.advance(1)
        assert world.runtime.launched("ext-flaky") == 6
        assert world.state("ext-flaky") is ServiceState.FAILED
        assert world.messages("ext-flaky")[-1] == (
            'restart limit reached (5 failures in 1m): task "ext-flaky" failed: exit code 1'
        )
        await world.clock.advance(600)
        assert world.runtime.launched("ext-flaky") == 6
        # `extsvc service ext-flaky start`: a new lifecycle with a clean record.
        assert world.supervisor.runner("ext-flaky").start()
        await world.clock.advance(24)
        assert world.runtime.launched("ext-flaky") == 11
        assert world.state("ext-flaky") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


def test_failures_spread_wider_than_the_window_never_reach_the_limit(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        limited = make_service(
            "slowfail", policy=ServicePolicy(restart_limit=RestartLimit(count=2, window=9))
        )
        world = World(tmp_path, limited, scripts={"ext-slowfail": [Script(1)]})
        world.supervisor.start_all()
        # One failure every 5 s: never more than 2 within any 9 s.
        await world.clock.advance(100)
        assert world.runtime.launched("ext-slowfail") == 21
        assert world.state("ext-slowfail") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()
