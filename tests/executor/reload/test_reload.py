"""A reload (SIGHUP, `extsvc reload`) restarts only what changed and leaves a service stopped by
hand stopped (fake runtime)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from extsvc.executor.daemon.control import ControlHandler
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from tests.executor.fakes import make_plan, make_service
from tests.executor.world import World, run


def _changed(service: Any) -> Any:
    return replace(service, digest="sha256:" + "1" * 64)


def test_reload_restarts_only_what_changed(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        a, b, c = make_service("a"), make_service("b", services=("ext-a",)), make_service("c")
        x, y = make_service("x"), make_service("y", services=("ext-x",))
        world = World(tmp_path, a, b, c, x, y)
        world.supervisor.start_all()
        await settle()
        runners = world.supervisor.runners
        before = {i: r.container.pid for i, r in runners.items() if r.container}
        assert set(before) == {"ext-a", "ext-b", "ext-c", "ext-x", "ext-y"}
        world.runtime.cleanups.clear()
        report = await world.supervisor.reload(make_plan(_changed(a), b, c, make_service("d")))
        await settle()
        assert report.restarted == ["ext-a"]
        assert report.started == ["ext-d"]
        assert report.stopped == ["ext-x", "ext-y"]
        assert report.unchanged == ["ext-b", "ext-c"]
        # Dependents first: y stopped before x.
        assert world.runtime.cleanups.index("ext-y") < world.runtime.cleanups.index("ext-x")
        assert "ext-b" not in world.runtime.cleanups and "ext-c" not in world.runtime.cleanups
        after = {i: r.container.pid for i, r in runners.items() if r.container}
        assert after["ext-b"] == before["ext-b"] and after["ext-c"] == before["ext-c"]
        assert after["ext-a"] != before["ext-a"]
        assert "ext-d" in after and "ext-x" not in runners
        assert runners["ext-a"].service.digest == "sha256:" + "1" * 64
        reloaded = "Reloaded: plan entry changed (bundle sha256:111111111111…)"
        assert world.messages("ext-a").count(reloaded) == 1
        await world.supervisor.shutdown()

    scenario()


def test_reload_leaves_a_service_stopped_by_hand_stopped(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        a = make_service("a")
        world = World(tmp_path, a)
        handler = ControlHandler(world.supervisor)
        world.supervisor.start_all()
        await settle()
        [answer] = [r async for r in handler.handle({"op": "stop", "id": "a"})]
        assert answer["message"] == "Service 'ext-a' stopped"
        report = await world.supervisor.reload(make_plan(_changed(a)))
        await settle()
        assert report.restarted == ["ext-a"]
        assert world.state("ext-a") is ServiceState.FINISHED
        await world.supervisor.shutdown()

    scenario()
