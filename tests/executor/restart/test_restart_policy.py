"""Restart policies with a fake clock and a fake runtime (no runc): always, never, untilSuccess, a
failed launch, the capped backoff, a restart from every state. The fake world is
tests/executor/world.py."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import Documents, World, run


def test_always_restarts_after_every_exit_including_success(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", "always"), scripts={"ext-a": [Script(0)]})
        world.supervisor.start_all()
        await settle()
        assert world.runtime.launched("ext-a") == 1
        assert world.state("ext-a") is ServiceState.WAITING
        await world.clock.advance(5)
        assert world.runtime.launched("ext-a") == 2
        await world.clock.advance(15)
        assert world.runtime.launched("ext-a") == 5
        times = [t for _, t in world.runtime.launches]
        assert [b - a for a, b in itertools.pairwise(times)] == [5.0] * 4
        assert "restarting forever in 5s" in world.messages("ext-a")[-1]
        await world.supervisor.shutdown()
        assert world.state("ext-a") is ServiceState.FINISHED

    scenario()


def test_never_runs_once_and_reports_the_failure_with_the_last_log_line(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "never"),
            scripts={"ext-a": [Script(1, lines=("starting", "boom: no config"))]},
        )
        world.supervisor.start_all()
        await world.clock.advance(60)
        assert world.runtime.launched("ext-a") == 1
        assert world.state("ext-a") is ServiceState.FAILED
        assert world.messages("ext-a")[-1] == (
            'task "ext-a" failed: exit code 1 (last log "boom: no config")'
        )
        await world.supervisor.shutdown()
        assert world.state("ext-a") is ServiceState.FAILED

    scenario()


def test_never_that_succeeds_is_finished(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", "never"), scripts={"ext-a": [Script(0)]})
        world.supervisor.start_all()
        await world.clock.advance(60)
        assert world.runtime.launched("ext-a") == 1
        assert world.state("ext-a") is ServiceState.FINISHED
        assert world.messages("ext-a")[-1] == "Service finished successfully"

    scenario()


def test_until_success_restarts_failures_only(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        scripts = {"ext-a": [Script(1), Script(2), Script(0), Script(1)]}
        world = World(tmp_path, make_service("a", "untilSuccess"), scripts=scripts)
        world.supervisor.start_all()
        await world.clock.advance(100)
        assert world.runtime.launched("ext-a") == 3
        assert world.state("ext-a") is ServiceState.FINISHED
        assert any("restarting until it succeeds" in m for m in world.messages("ext-a"))

    scenario()


def test_launch_failure_follows_the_restart_policy(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        scripts = {"ext-a": [Script(launch_error="rootfs /x does not exist")]}
        world = World(tmp_path, make_service("a", "never"), scripts=scripts)
        world.supervisor.start_all()
        await settle()
        assert world.state("ext-a") is ServiceState.FAILED
        assert "rootfs /x does not exist" in world.messages("ext-a")[-1]

    scenario()


def test_capped_backoff_doubles_the_interval_for_consecutive_failures(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        settings = RunnerSettings(restart=RestartTiming(interval=1.0, max_interval=4.0))
        world = World(
            tmp_path, make_service("a", "always"), scripts={"ext-a": [Script(1)]}, settings=settings
        )
        world.supervisor.start_all()
        await world.clock.advance(30)
        times = [t for _, t in world.runtime.launches]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[:5] == [1.0, 2.0, 4.0, 4.0, 4.0]
        await world.supervisor.shutdown()

    scenario()


def test_restart_works_from_every_state(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        marker = tmp_path / "gate"
        world = World(
            tmp_path,
            make_service("a", "never", paths=(str(marker),)),
            scripts={"ext-a": [Script(1)]},
        )
        runner = world.supervisor.runners["ext-a"]
        await runner.restart()  # Initialized
        await settle()
        assert runner.state is ServiceState.WAITING
        await runner.restart()  # Waiting
        await settle()
        assert runner.state is ServiceState.WAITING
        marker.touch()
        await world.clock.advance(1)
        assert runner.state is ServiceState.FAILED
        await runner.restart()  # Failed
        await settle()
        assert runner.state is ServiceState.FAILED
        assert world.runtime.launched("ext-a") == 2
        world.runtime.scripts["ext-a"] = [Script(None)]
        await runner.restart()
        await settle()
        assert runner.state is ServiceState.RUNNING
        await runner.restart()  # Running
        await settle()
        assert runner.state is ServiceState.RUNNING
        assert world.runtime.launched("ext-a") == 4
        await world.supervisor.shutdown()

    scenario()


def test_a_configuration_change_restarts_the_services_named_and_wakes_those_waiting(
    tmp_path: Path,
) -> None:
    """What the config watcher tells the supervisor (configuration_changed): the active
    services it names restart, once; a service waiting for its document is not polled
    (the change is announced) and starts at the announcement; no other is touched."""

    @run
    async def scenario() -> None:
        documents: set[str] = set()
        configuration = Documents(documents.__contains__, None)
        configuration.watched = True
        waiting = make_service("b")
        waiting = dataclasses.replace(
            waiting, depends=dataclasses.replace(waiting.depends, configuration=True)
        )
        world = World(
            tmp_path, make_service("a"), waiting, make_service("c"), configuration=configuration
        )
        world.supervisor.start_all()
        await settle()
        assert world.state("ext-a") is ServiceState.RUNNING
        assert world.state("ext-b") is ServiceState.WAITING
        documents.add("b")
        await world.clock.advance(5)
        assert world.state("ext-b") is ServiceState.WAITING  # not polled
        world.supervisor.configuration_changed(["a"])
        await world.clock.advance(1)
        assert world.state("ext-b") is ServiceState.RUNNING
        assert world.state("ext-a") is ServiceState.RUNNING
        assert world.runtime.launched("ext-a") == 2
        assert world.runtime.launched("ext-c") == 1
        await world.supervisor.shutdown()

    scenario()
