"""Each run of a service is marked in its log, so one run's lines are told from the next's (fake
runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


def test_run_markers_separate_runs_in_the_log(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "untilSuccess"),
            scripts={"ext-a": [Script(1, lines=("try",)), Script(0, lines=("ok",))]},
        )
        world.supervisor.start_all()
        await world.clock.advance(6)
        records = world.supervisor.runners["ext-a"].log.tail(None)
        assert [(r.stream, r.line) for r in records] == [
            ("extsvc", "-- ext-a run 1 started --"),
            ("output", "try"),
            ("extsvc", "-- exited with code 1 --"),
            ("extsvc", "-- ext-a run 2 started --"),
            ("output", "ok"),
            ("extsvc", "-- exited with code 0 --"),
        ]
        await world.supervisor.shutdown()

    scenario()
