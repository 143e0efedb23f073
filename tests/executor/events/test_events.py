"""Events as people read them: runc's errors reduced to their cause, identical failures folded,
each host adaptation an event (and the summary once per executor start), the last 64 kept (fake
runtime)."""

from __future__ import annotations

from pathlib import Path

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES as CAPABILITY_NAMES
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.causes import runc_cause
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script
from tests.executor.fakes import make_service
from tests.executor.world import World, run

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
