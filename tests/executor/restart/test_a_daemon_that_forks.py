"""A `restart: always` task whose entrypoint exits 0 at once is a daemon that forked, and its event
says so; a later exit, or a one-shot's, is not (fake clock, fake runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.executor.service.states import folded
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run

FORKED = "the entrypoint exited 0 at once (within 1s of its start): a daemon that forks"


def test_an_always_task_exiting_0_at_once_is_said_to_have_forked(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        # A daemon without its foreground flag: the init forks it and exits 0 at once.
        world = World(tmp_path, make_service("a"), scripts={"ext-a": [Script(0, duration=0.2)]})
        world.supervisor.start_all()
        await settle()
        await world.clock.advance(0.2)
        assert world.messages("ext-a")[-1] == (
            f'Task "ext-a" finished: exit code 0; {FORKED} needs its foreground flag; '
            "restarting forever in 5s"
        )
        # It loops every 5 s (runs end at 0.2, 5.4, 10.6, 15.8 s): one event, folded.
        await world.clock.advance(20)
        events = world.supervisor.runners["ext-a"].events
        texts = [e.text for e in events if FORKED in e.message]
        assert len(texts) == 1 and texts[0].endswith(folded("", 4))
        await world.supervisor.shutdown()

    scenario()


def test_an_exit_0_after_a_second_or_of_a_one_shot_is_not_a_fork(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("ran"),
            make_service("once", "untilSuccess"),
            scripts={"ext-ran": [Script(0, duration=1.0)], "ext-once": [Script(0)]},
        )
        world.supervisor.start_all()
        await settle()
        await world.clock.advance(1.0)
        assert world.messages("ext-ran")[-1] == (
            'Task "ext-ran" finished: exit code 0; restarting forever in 5s'
        )
        assert world.messages("ext-once")[-1] == "Service finished successfully"
        assert not [
            m for m in world.messages("ext-ran") + world.messages("ext-once") if FORKED in m
        ]
        await world.supervisor.shutdown()

    scenario()
