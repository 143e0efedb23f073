"""x-extsvc start timeouts and optional services: a start that waits too long fails naming what it
waited for; the dependents of a failed optional service are skipped (fake clock, fake runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.compiler.format.servicepolicy import ServicePolicy
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


def test_start_timeout_fails_naming_every_unmet_condition(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        slow = make_service(
            "slow",
            services=("ext-db",),
            host_services=("cri",),
            policy=ServicePolicy(start_timeout=120),
        )
        db = make_service("db", restart="never")
        world = World(tmp_path, slow, db, scripts={"ext-db": [Script(1)]})
        world.supervisor.start_all()
        await world.clock.advance(119)
        assert world.state("ext-slow") is ServiceState.WAITING
        await world.clock.advance(1)
        assert world.state("ext-slow") is ServiceState.FAILED
        assert world.messages("ext-slow")[-1] == (
            'Start timeout (2m) reached: still waiting for service "ext-db" to be "up", '
            'service "cri" to be "up" (no readiness rule for it in --host-services)'
        )
        assert world.runtime.launched("ext-slow") == 0
        await world.supervisor.shutdown()

    scenario()


def test_dependents_of_a_failed_optional_service_are_skipped(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        extra = make_service("extra", restart="never", policy=ServicePolicy(optional=True))
        world = World(
            tmp_path,
            extra,
            make_service("user", services=("ext-extra",)),
            make_service("second", services=("ext-user",)),
            # It never reaches Running (where a dependent could start in that moment).
            scripts={"ext-extra": [Script(launch_error="no such device")]},
        )
        world.supervisor.start_all()
        await settle()
        assert world.state("ext-extra") is ServiceState.FAILED
        assert world.state("ext-user") is ServiceState.SKIPPED
        assert world.messages("ext-user")[-1] == (
            'Service skipped: optional dependency "ext-extra" failed: '
            'Failed to start task "ext-extra": no such device'
        )
        # Skipped for the same reason, one level further: nothing is left waiting.
        assert world.state("ext-second") is ServiceState.SKIPPED
        assert world.messages("ext-second")[-1].startswith(
            'Service skipped: dependency "ext-user" was skipped (optional dependency "ext-extra"'
        )
        await world.supervisor.shutdown()

    scenario()


def test_a_failed_required_service_keeps_its_dependents_waiting(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("base", restart="never"),
            make_service("user", services=("ext-base",)),
            scripts={"ext-base": [Script(launch_error="no such device")]},
        )
        world.supervisor.start_all()
        await world.clock.advance(600)
        assert world.state("ext-base") is ServiceState.FAILED
        assert world.state("ext-user") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


def test_a_timed_out_optional_service_skips_its_dependents(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        extra = make_service(
            "extra",
            paths=("/nonexistent/dev",),
            policy=ServicePolicy(optional=True, start_timeout=5),
        )
        world = World(tmp_path, extra, make_service("user", services=("ext-extra",)))
        world.supervisor.start_all()
        await world.clock.advance(5)
        assert world.state("ext-extra") is ServiceState.FAILED
        assert world.state("ext-user") is ServiceState.SKIPPED
        await world.supervisor.shutdown()

    scenario()
