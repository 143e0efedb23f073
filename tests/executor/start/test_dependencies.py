"""Dependencies and conditions: what a service waits for, in order, and what it says while it waits
(fake clock, fake runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


def test_dependency_chain_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        # c depends on b, b on a; each takes a moment to come up.
        world = World(
            tmp_path,
            make_service("c", services=("ext-b",)),
            make_service("b", services=("ext-a",)),
            make_service("a"),
            scripts={
                "ext-a": [Script(launch_error="not yet"), Script(None)],
                "ext-b": [Script(None)],
                "ext-c": [Script(None)],
            },
        )
        world.supervisor.start_all()
        await settle()
        assert world.runtime.launches == []
        assert world.messages("ext-c") == ['Waiting for service "ext-b" to be "up"']
        await world.clock.advance(5)
        assert [sid for sid, _ in world.runtime.launches] == ["ext-a", "ext-b", "ext-c"]
        assert any('Waiting for service "ext-a" to be "up"' in m for m in world.messages("ext-b"))
        await world.supervisor.shutdown()
        assert world.runtime.cleanups == ["ext-c", "ext-b", "ext-a"]
        assert all(world.state(s) is ServiceState.FINISHED for s in ("ext-a", "ext-b", "ext-c"))

    scenario()


def test_dependent_of_a_one_shot_waits_for_its_successful_finish(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("setup", "never"),
            make_service("app", services=("ext-setup",)),
            scripts={"ext-setup": [Script(0, duration=3)], "ext-app": [Script(None)]},
        )
        world.supervisor.start_all()
        await settle()
        # A one-shot that is still running counts as up (Running), as in Talos.
        assert world.runtime.launched("ext-app") == 1
        await world.clock.advance(5)
        assert world.state("ext-setup") is ServiceState.FINISHED
        assert world.state("ext-app") is ServiceState.RUNNING
        await world.supervisor.shutdown()

    scenario()


def test_path_dependency_is_released_when_the_path_appears(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        marker = tmp_path / "ready"
        world = World(tmp_path, make_service("a", paths=(str(marker),)))
        world.supervisor.start_all()
        await world.clock.advance(3)
        assert world.state("ext-a") is ServiceState.WAITING
        assert world.messages("ext-a") == [f'Waiting for path "{marker}"']
        marker.touch()
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.RUNNING
        await world.supervisor.shutdown()

    scenario()


def test_waiting_message_updates_as_conditions_are_met(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        marker = tmp_path / "dev-zfs"
        world = World(
            tmp_path,
            make_service("a", "always", services=("ext-b",), paths=(str(marker),)),
            make_service("b"),
            scripts={"ext-b": [Script(launch_error="not yet"), Script(None)]},
        )
        world.supervisor.start_all()
        await settle()
        assert world.messages("ext-a")[0] == (
            f'Waiting for service "ext-b" to be "up", path "{marker}"'
        )
        await world.clock.advance(5)
        assert world.state("ext-b") is ServiceState.RUNNING
        assert world.messages("ext-a")[-1] == f'Waiting for path "{marker}"'
        marker.touch()
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.RUNNING
        await world.supervisor.shutdown()

    scenario()


def test_unmapped_host_service_waits_and_says_why(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", host_services=("cri",)))
        world.supervisor.start_all()
        await world.clock.advance(3)
        assert world.state("ext-a") is ServiceState.WAITING
        assert "no readiness rule" in world.messages("ext-a")[-1]
        await world.supervisor.shutdown()
        assert world.state("ext-a") is ServiceState.SKIPPED

    scenario()
