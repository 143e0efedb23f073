"""Issue 8 with fakes: readable events, reload, honest start/restart, sd_notify, run markers."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES as CAPABILITY_NAMES
from extsvc.compiler.format.plan import HealthCheck, OnUnhealthy, ServicePolicy
from extsvc.executor.daemon.control import ControlHandler, StartFailed
from extsvc.executor.daemon.notify import Notifier
from extsvc.executor.errors import UnknownServiceError
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.causes import runc_cause
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.service.ids import resolve_id
from extsvc.executor.service.runner import RestartTiming, RunnerSettings
from extsvc.executor.service.states import ServiceState
from tests.executor.fakes import Script, make_plan, make_service, settle
from tests.executor.restart.test_restart_policy import World, run

RUNC_LINE = (
    'time="2026-11-22T04:31:13Z" level=error msg="runc create failed: unable to start '
    'container process: exec: \\"/bin/x\\": stat /bin/x: no such file or directory"'
)


def test_runc_errors_are_reduced_to_their_cause() -> None:
    assert runc_cause(RUNC_LINE) == 'exec: "/bin/x": stat /bin/x: no such file or directory'
    assert runc_cause("ERRO[0000] runc run failed: open /dev/tty: no such device") == (
        "open /dev/tty: no such device"
    )
    assert runc_cause("my service said: level=error") == "my service said: level=error"


def test_a_crash_loop_folds_identical_failures(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "always"),
            scripts={"ext-a": [Script(1, lines=("boom",))]},
            settings=RunnerSettings(restart=RestartTiming(interval=1.0)),
        )
        world.supervisor.start_all()
        await world.clock.advance(11.5)
        events = list(world.supervisor.runners["ext-a"].events)
        failures = [e for e in events if e.failure]
        assert len(failures) == 1
        assert failures[0].count == 12
        assert failures[0].text == (
            'task "ext-a" failed: exit code 1 (last log "boom"); '
            "restarting forever in 1s (\u00d712)"
        )
        # The history keeps what happened before the loop (here: the first run's start).
        assert [e.message for e in events[:2]] == ["Running pre state", "Creating service runner"]
        assert events[2].message.startswith("Started task ext-a")
        assert events[3:] == failures
        await world.supervisor.shutdown()

    scenario()


def test_a_runc_failure_event_says_the_cause(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a", "never"),
            scripts={
                "ext-a": [Script(launch_error="runc create exited with code 1", lines=(RUNC_LINE,))]
            },
        )
        world.supervisor.start_all()
        await settle()
        assert world.messages("ext-a")[-1] == (
            'Failed to start task "ext-a": runc create exited with code 1 '
            '(last log "exec: "/bin/x": stat /bin/x: no such file or directory")'
        )
        await world.supervisor.shutdown()

    scenario()


def test_host_adaptation_is_reported_once_per_executor_start(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        restricted = HostFacts(
            bounding_capabilities=frozenset(CAPABILITY_NAMES) - {"CAP_SYS_RESOURCE"},
            can_lower_oom_score=False,
        )
        spec = {"process": {"args": ["./x"], "oomScoreAdj": -600}}
        world = World(
            tmp_path,
            make_service("a", "always", spec=spec),
            host=restricted,
            scripts={"ext-a": [Script(0, lines=("done",))]},
        )
        world.supervisor.start_all()
        await world.clock.advance(16)
        runner = world.supervisor.runners["ext-a"]
        assert world.runtime.launched("ext-a") == 4
        adaptation = [m for m in world.messages("ext-a") if "leaving out oomScoreAdj" in m]
        assert len(adaptation) == 1
        assert runner.adaptations == adaptation
        # Every run still gets the adapted spec.
        assert all("oomScoreAdj" not in s["process"] for s in world.runtime.specs)
        await world.supervisor.shutdown()

    scenario()


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


def test_bare_names_resolve_and_unknown_ids_suggest() -> None:
    known = ["ext-hello-world", "ext-greeter"]
    assert resolve_id("hello-world", known) == "ext-hello-world"
    assert resolve_id("ext-greeter", known) == "ext-greeter"
    with pytest.raises(UnknownServiceError, match="did you mean 'ext-hello-world'"):
        resolve_id("helo-world", known)
    with pytest.raises(UnknownServiceError, match="services: ext-greeter, ext-hello-world"):
        resolve_id("zzz", known)


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


def test_start_of_a_service_that_keeps_waiting_times_out(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", paths=(str(tmp_path / "never"),)))
        handler = ControlHandler(world.supervisor)
        with pytest.raises(StartFailed, match="did not start within 100ms; last event: "):
            await _ask(handler, {"op": "start", "id": "a", "wait": True, "timeout": 0.1})
        await world.supervisor.shutdown()

    scenario()


def test_sd_notify_datagrams(tmp_path: Path) -> None:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.settimeout(5)
    notifier = Notifier(str(tmp_path / "notify"))
    notifier.ready("running 2 service(s)")
    notifier.reloading()
    notifier.stopping()

    async def one_ping() -> None:
        task = asyncio.create_task(notifier.watchdog(20_000_000))
        await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(one_ping())
    received = [receiver.recv(4096).decode() for _ in range(4)]
    assert received[0] == "READY=1\nSTATUS=running 2 service(s)"
    assert received[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert received[2].startswith("STOPPING=1")
    assert received[3] == "WATCHDOG=1"
    assert not Notifier(None).enabled
    Notifier(None).ready("nobody listens")  # no socket: nothing happens, nothing fails


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
