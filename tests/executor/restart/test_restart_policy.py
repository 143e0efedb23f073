"""Restart, dependency and stop policy with a fake clock and a fake runtime (no runc)."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES as CAPABILITY_NAMES
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.runner import RestartTiming, RunnerSettings
from extsvc.executor.service.states import ServiceState
from extsvc.executor.supervise.supervisor import Supervisor
from tests.executor.fakes import FakeClock, FakeRuntime, Script, make_plan, make_service, settle

FULL_HOST = HostFacts(bounding_capabilities=frozenset(CAPABILITY_NAMES), can_lower_oom_score=True)
SETTINGS = RunnerSettings(
    restart=RestartTiming(interval=5.0), stop_timeout=10.0, check_interval=1.0
)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    def wrapper() -> None:
        asyncio.run(test())

    wrapper.__name__ = test.__name__
    return wrapper


class World:
    """A supervisor over fakes, for one test."""

    def __init__(self, tmp: Path, *services: Any, host: HostFacts = FULL_HOST, **kw: Any) -> None:
        self.clock = FakeClock()
        self.runtime = FakeRuntime(self.clock, kw.pop("scripts", {}))
        self.supervisor = Supervisor(
            make_plan(*services),
            self.runtime,
            self.clock,
            host,
            kw.pop("settings", SETTINGS),
            log_dir=tmp,
            **kw,
        )

    def state(self, service_id: str) -> ServiceState:
        return self.supervisor.runners[service_id].state

    def messages(self, service_id: str) -> list[str]:
        return [e.message for e in self.supervisor.runners[service_id].events]


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


def test_stop_escalates_to_sigkill_after_the_timeout(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("a"),
            scripts={"ext-a": [Script(None, ignore_sigterm=True)]},
        )
        world.supervisor.start_all()
        await settle()
        stopping = asyncio.ensure_future(world.supervisor.runners["ext-a"].stop())
        await world.clock.advance(9)
        assert not stopping.done()
        assert world.state("ext-a") is ServiceState.STOPPING
        await world.clock.advance(1)
        await stopping
        assert world.runtime.containers[0].signals == [signal.SIGTERM, signal.SIGKILL]
        assert world.state("ext-a") is ServiceState.FINISHED
        assert any(m.startswith("Sending SIGKILL") for m in world.messages("ext-a"))

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


def test_stop_while_waiting_is_skipped(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a", paths=("/nonexistent/never",)))
        world.supervisor.start_all()
        await settle()
        await world.supervisor.runners["ext-a"].stop()
        assert world.state("ext-a") is ServiceState.SKIPPED
        assert world.runtime.launched("ext-a") == 0

    scenario()


def test_each_host_adaptation_is_an_event(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        restricted = HostFacts(
            bounding_capabilities=frozenset(CAPABILITY_NAMES) - {"CAP_SYS_RESOURCE"},
            can_lower_oom_score=False,
        )
        spec = {
            "process": {
                "args": ["./hello"],
                "oomScoreAdj": -600,
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE"]},
            }
        }
        world = World(tmp_path, make_service("a", spec=spec), host=restricted)
        world.supervisor.start_all()
        await settle()
        messages = world.messages("ext-a")
        assert messages[0] == "Running pre state"
        assert "not granting CAP_SYS_RESOURCE" in messages[1]
        assert "leaving out oomScoreAdj -600" in messages[2]
        assert messages[3] == "Creating service runner"
        assert messages[4].startswith("Started task ext-a (PID ")
        launched = world.runtime.specs[0]["process"]
        assert "oomScoreAdj" not in launched
        assert launched["capabilities"]["bounding"] == ["CAP_CHOWN"]
        # The compiled spec is untouched.
        assert spec["process"]["oomScoreAdj"] == -600
        await world.supervisor.shutdown()

    scenario()


def test_event_history_keeps_the_last_64(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        # Each failure says something new (its run number): nothing folds, 64 are kept.
        lines = tuple(f"attempt {i}" for i in range(100))
        world = World(
            tmp_path,
            make_service("a", "always"),
            scripts={"ext-a": [Script(1, lines=(line,)) for line in lines]},
            settings=RunnerSettings(restart=RestartTiming(interval=1.0)),
        )
        world.supervisor.start_all()
        await world.clock.advance(40)
        assert len(world.supervisor.runners["ext-a"].events) == 64
        await world.supervisor.shutdown()

    scenario()


def test_an_error_in_cleanup_fails_the_service_but_not_the_shutdown(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("a"), scripts={"ext-a": [Script(None)]})

        async def broken_cleanup(service: Any) -> None:
            raise OSError(16, "Device or resource busy")

        world.runtime.cleanup = broken_cleanup  # type: ignore[method-assign]
        world.supervisor.start_all()
        await settle()
        await world.supervisor.shutdown()
        assert world.state("ext-a") is ServiceState.FAILED
        assert "internal error: OSError(16" in world.messages("ext-a")[-1]

    scenario()


def test_a_stop_ends_a_crash_loop_whose_create_outlasts_the_restart_interval(
    tmp_path: Path,
) -> None:
    """Found by the soak (bench/soak.py): on a loaded host a crash-looping service's
    create-while-waiting took longer than its restart interval, so the wait after it was
    already over, and the container of the next run was already dead when the runner
    looked: a stop requested meanwhile lost both races (the finished work was preferred)
    and the loop went on forever; `extsvc reload` and the shutdown waited for it."""

    class SlowCreates(FakeRuntime):
        async def create(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.02)  # longer than the 10 ms restart interval
            return await super().create(*args, **kwargs)

    @run
    async def scenario() -> None:
        runtime = SlowCreates(FakeClock(), {"ext-a": [Script(1)]})  # exits at once, code 1
        supervisor = Supervisor(
            make_plan(make_service("a", "always")),
            runtime,
            SystemClock(),
            FULL_HOST,
            RunnerSettings(restart=RestartTiming(interval=0.01), stop_timeout=1.0),
            log_dir=tmp_path,
        )
        supervisor.start_all()
        runner = supervisor.runners["ext-a"]
        for _ in range(20):  # a stop at every moment of the loop
            while runner.runs < 3:
                await asyncio.sleep(0.001)
            await asyncio.wait_for(runner.stop(), 5)
            assert runner.state is ServiceState.FINISHED
            runner.runs = 0
            runner.start()
        await asyncio.wait_for(supervisor.shutdown(), 5)

    scenario()


def test_a_shutdown_says_what_it_waits_for_and_kill_now_drops_grace_and_order(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        world = World(
            tmp_path,
            make_service("web", services=("ext-db",)),
            make_service("db"),
            make_service("idle", paths=(str(tmp_path / "never"),)),
            scripts={
                "ext-web": [Script(None, ignore_sigterm=True)],
                "ext-db": [Script(None, ignore_sigterm=True)],
            },
        )
        world.supervisor.start_all()
        await settle()
        shutdown = asyncio.ensure_future(world.supervisor.shutdown())
        await settle()
        await world.clock.advance(3)
        web_pid = world.supervisor.runners["ext-web"].container.pid  # type: ignore[union-attr]
        assert world.supervisor.stop_status() == [
            "ext-db: waits for ext-web to stop first",
            f"ext-web (PID {web_pid}): SIGTERM sent 3s ago, SIGKILL in 7s",
        ]  # ext-idle never ran: it stopped at once
        world.supervisor.kill_now()
        await settle()
        await shutdown  # no clock advance needed: neither grace nor order is waited for
        signals = {c.id: c.signals for c in world.runtime.containers}
        assert signals == {
            "ext-web": [signal.SIGTERM, signal.SIGKILL],
            "ext-db": [signal.SIGKILL],  # never asked to stop gracefully: killed at once
            "ext-idle": [],  # created ahead while it waits, never started: deleted
        }
        assert sorted(world.runtime.cleanups) == ["ext-db", "ext-idle", "ext-web"]
        assert world.messages("ext-db")[-2].endswith(": the executor was told to kill at once")
        assert world.supervisor.stop_status() == []

    scenario()
