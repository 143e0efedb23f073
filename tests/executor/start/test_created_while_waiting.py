"""Containers created while their service waits, with a fake runtime.

A service whose spec is final is created as soon as it waits, so that only `start`
is left when its conditions are met; a spec that changed by then is created again;
a stop while waiting removes the created container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


def test_a_dependent_is_created_while_waiting_and_only_started_when_its_dependency_is_up(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "never", paths=("/nonexistent/flag",)),
            make_service("b", "always", services=("ext-a",)),
            scripts={"ext-a": [Script(None)], "ext-b": [Script(None)]},
        )
        world.supervisor.start_all()
        await settle()
        # Both wait; both are created (a stopped init each), neither runs.
        assert world.state("ext-b") is ServiceState.WAITING
        assert (world.runtime.created("ext-a"), world.runtime.created("ext-b")) == (1, 1)
        assert world.runtime.launched("ext-b") == 0
        assert world.supervisor.runners["ext-b"].container is None
        runner_a = world.supervisor.runners["ext-a"]
        runner_a.conditions.clear()  # the path appears
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.RUNNING
        assert world.state("ext-b") is ServiceState.RUNNING
        # Started, not created again.
        assert (world.runtime.created("ext-a"), world.runtime.created("ext-b")) == (1, 1)
        assert world.runtime.launched("ext-b") == 1
        # The events read as before: nothing else changes for the user.
        assert world.messages("ext-b")[-3:] == [
            "Running pre state",
            "Creating service runner",
            "Started task ext-b (PID 102) for container ext-b",
        ]
        await world.supervisor.shutdown()

    scenario()


def test_a_stop_while_waiting_removes_the_created_container(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", "always", paths=("/nonexistent/flag",)))
        world.supervisor.start_all()
        await settle()
        assert world.runtime.created("ext-a") == 1
        await world.supervisor.runners["ext-a"].stop()
        assert world.state("ext-a") is ServiceState.SKIPPED
        assert world.runtime.live("ext-a") == []
        assert world.runtime.launched("ext-a") == 0

    scenario()


def test_no_container_before_the_spec_is_final(tmp_path: Path) -> None:
    """The configuration document changes the spec: nothing is created before it exists."""

    @run
    async def scenario() -> None:
        service = make_service("a", "always")
        service = _with(service, depends=_with(service.depends, configuration=True))
        documents: set[str] = set()
        world = World(tmp_path, service, has_configuration=documents.__contains__)
        world.supervisor.start_all()
        await world.clock.advance(3)
        assert world.state("ext-a") is ServiceState.WAITING
        assert world.runtime.created("ext-a") == 0
        documents.add("a")
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.RUNNING
        assert world.runtime.created("ext-a") == 1
        await world.supervisor.shutdown()

    scenario()


def test_a_spec_changed_while_created_is_created_again(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        environment = ["GREETING=hello"]

        def prepare(service: ServicePlan) -> dict[str, Any]:
            return {**service.spec, "process": {"args": ["/bin/true"], "env": list(environment)}}

        world = World(
            tmp_path,
            make_service("a", "always", paths=("/nonexistent/flag",)),
            prepare_spec=prepare,
        )
        world.supervisor.start_all()
        await settle()
        assert world.runtime.created("ext-a") == 1
        environment[0] = "GREETING=bonjour"  # a new configuration document
        world.supervisor.runners["ext-a"].conditions.clear()
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.RUNNING
        assert world.runtime.created("ext-a") == 2
        assert world.runtime.cleanups == ["ext-a"]
        assert world.runtime.specs[-1]["process"]["env"] == ["GREETING=bonjour"]
        (running,) = world.runtime.live("ext-a")
        assert running.started
        await world.supervisor.shutdown()

    scenario()


def test_the_next_run_is_created_during_the_restart_interval(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "always"),
            scripts={"ext-a": [Script(1, duration=2), Script(None)]},
        )
        world.supervisor.start_all()
        await world.clock.advance(2)
        assert world.state("ext-a") is ServiceState.WAITING
        # Exited, cleaned up, and already created again while the 5 s run out.
        assert world.runtime.created("ext-a") == 2
        assert world.runtime.launched("ext-a") == 1
        await world.clock.advance(5)
        assert world.state("ext-a") is ServiceState.RUNNING
        assert (world.runtime.created("ext-a"), world.runtime.launched("ext-a")) == (2, 2)
        await world.supervisor.shutdown()
        assert world.runtime.live("ext-a") == []

    scenario()


def test_a_failed_early_create_is_tried_again_and_reported_when_the_service_is_due(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "never", paths=("/nonexistent/flag",)),
            scripts={"ext-a": [Script(launch_error="rootfs missing")]},
        )
        world.supervisor.start_all()
        await world.clock.advance(3)
        # Tried once while waiting, silently: the service is still just waiting.
        assert world.runtime.created("ext-a") == 1
        assert world.state("ext-a") is ServiceState.WAITING
        world.supervisor.runners["ext-a"].conditions.clear()
        await world.clock.advance(1)
        assert world.runtime.created("ext-a") == 2
        assert world.state("ext-a") is ServiceState.FAILED
        assert world.messages("ext-a")[-1] == 'Failed to start task "ext-a": rootfs missing'

    scenario()


def test_a_start_that_fails_removes_the_created_container(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "never"),
            scripts={"ext-a": [Script(start_error="runc start exited with code 1")]},
        )
        world.supervisor.start_all()
        await world.clock.advance(1)
        assert world.state("ext-a") is ServiceState.FAILED
        assert world.runtime.live("ext-a") == []
        assert world.messages("ext-a")[-1] == (
            'Failed to start task "ext-a": runc start exited with code 1'
        )

    scenario()


def _with(value: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(value, **changes)
