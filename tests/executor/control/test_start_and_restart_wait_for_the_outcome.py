"""`extsvc start` and `extsvc restart` wait for the outcome: a failure is reported, a health check
is waited for, a start whose conditions are never met ends at its timeout (fake runtime)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from extsvc.compiler.format.servicepolicy import HealthCheck, OnUnhealthy, ServicePolicy
from extsvc.executor.daemon.control import ControlHandler, StartFailed
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run


async def _ask(handler: ControlHandler, request: dict[str, Any]) -> dict[str, Any]:
    answers = [answer async for answer in handler.handle(request)]
    return answers[-1]


def test_restart_waits_and_reports_the_failure(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("ok"),
            make_service("bad"),
            make_service("once", "never"),
            scripts={
                "ext-bad": [Script(None), Script(2, lines=("no config file",))],
                "ext-once": [Script(0)],
            },
        )
        handler = ControlHandler(world.supervisor)
        world.supervisor.start_all()
        await settle()
        request = {"op": "restart", "wait": True, "settle": 0.05, "timeout": 10}
        ok = await _ask(handler, {**request, "id": "ok"})
        assert ok["message"].startswith("ext-ok: Started task ext-ok (PID ")
        with pytest.raises(StartFailed) as failed:
            await _ask(handler, {**request, "id": "bad"})
        assert str(failed.value) == (
            'ext-bad [Waiting]: task "ext-bad" failed: exit code 2 '
            '(last log "no config file"); restarting forever in 5s'
        )
        once = await _ask(handler, {**request, "id": "once"})
        assert once["message"] == "ext-once: Service finished successfully"
        no_wait = await _ask(handler, {"op": "restart", "id": "ok"})
        assert no_wait["message"] == "Service 'ext-ok' restarted"
        await world.supervisor.shutdown()

    scenario()


def test_restart_of_a_service_with_a_health_check_waits_until_it_is_healthy(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        check = HealthCheck(("/bin/check",), 10.0, 3.0, 3, 0.0, OnUnhealthy.NONE)
        world = World(tmp_path, make_service("db", policy=ServicePolicy(health=check)))
        world.runtime.health["ext-db"] = ExecResult(1, "not ready\n")
        handler = ControlHandler(world.supervisor)
        world.supervisor.start_all()
        await settle()
        request = {"op": "restart", "id": "db", "wait": True, "settle": 0.01, "timeout": 30}
        answer = asyncio.ensure_future(_ask(handler, request))
        await asyncio.sleep(0.1)  # well past the settle time: unhealthy is not started
        assert not answer.done()
        world.runtime.health["ext-db"] = ExecResult(0, "ok\n")
        await world.clock.advance(10)  # the next check passes
        reply = await answer
        assert reply["message"].endswith(", healthy")
        await world.supervisor.shutdown()

    scenario()


def test_start_of_a_service_that_keeps_waiting_times_out(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", paths=(str(tmp_path / "never"),)))
        handler = ControlHandler(world.supervisor)
        with pytest.raises(StartFailed, match="did not start within 100ms; last event: "):
            await _ask(handler, {"op": "start", "id": "a", "wait": True, "timeout": 0.1})
        await world.supervisor.shutdown()

    scenario()
