"""x-extsvc policy with a fake clock and a fake runtime (no runc): health checks that gate
dependents and restart, start timeouts, optional services, per-service stop grace and
restart limits (issue 10 items 2-4)."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES
from extsvc.compiler.format.plan import HealthCheck, OnUnhealthy, RestartLimit, ServicePolicy
from extsvc.executor.cli.servicetext import service_detail
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.service.health import Health
from extsvc.executor.service.states import ServiceState, folded
from tests.executor.fakes import Script, make_service, settle
from tests.executor.restart.test_restart_policy import World, run

NOT_READY = ExecResult(1, "starting\nnot ready\n")
READY = ExecResult(0, "ok\n")


def health(
    interval: float = 10.0,
    timeout: float = 3.0,
    retries: int = 3,
    start_period: float = 0.0,
    on_unhealthy: OnUnhealthy = OnUnhealthy.NONE,
) -> HealthCheck:
    return HealthCheck(("/bin/check",), interval, timeout, retries, start_period, on_unhealthy)


def test_a_dependent_starts_only_once_its_dependency_is_healthy(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        db = make_service("db", policy=ServicePolicy(health=health(retries=1)))
        world = World(tmp_path, db, make_service("app", services=("ext-db",)))
        world.runtime.health["ext-db"] = NOT_READY
        world.supervisor.start_all()
        await settle()
        runner = world.supervisor.runners["ext-db"]
        assert world.state("ext-db") is ServiceState.RUNNING
        assert runner.health is Health.FAIL
        assert runner.last_health_message == "exit code 1: not ready"
        assert world.state("ext-app") is ServiceState.WAITING
        assert world.messages("ext-app")[-1] == (
            'Waiting for service "ext-db" to be "up" and healthy'
        )
        await world.clock.advance(9)
        assert world.runtime.launched("ext-app") == 0
        world.runtime.health["ext-db"] = READY
        await world.clock.advance(1)  # the next check, 10 s after the first
        assert world.runtime.checks("ext-db") == [1_000_000.0, 1_000_010.0]
        assert runner.health is Health.OK and runner.last_health_message == "ok"
        assert "Health check successful" in world.messages("ext-db")
        assert world.runtime.launched("ext-app") == 1
        assert world.state("ext-app") is ServiceState.RUNNING
        await world.supervisor.shutdown()

    scenario()


def test_without_a_check_health_is_unknown_and_running_is_enough(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        world = World(tmp_path, make_service("db"), make_service("app", services=("ext-db",)))
        world.supervisor.start_all()
        await settle()
        assert world.supervisor.runners["ext-db"].health is Health.UNKNOWN
        assert world.runtime.execs == []
        assert world.state("ext-app") is ServiceState.RUNNING
        await world.supervisor.shutdown()

    scenario()


def test_unhealthy_restarts_after_retries_failures_past_the_start_period(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        check = health(retries=3, start_period=30, on_unhealthy=OnUnhealthy.RESTART)
        world = World(tmp_path, make_service("db", policy=ServicePolicy(health=check)))
        world.runtime.health["ext-db"] = NOT_READY
        world.supervisor.start_all()
        runner = world.supervisor.runners["ext-db"]
        # Checks at 0, 10, 20 fall in the start period; 30, 40 count, but are only two.
        await world.clock.advance(49)
        assert runner.health is Health.UNKNOWN
        assert runner.last_health_message == "exit code 1: not ready"
        assert world.runtime.launched("ext-db") == 1
        await world.clock.advance(1)  # the third counted failure, at 50 s
        messages = world.messages("ext-db")
        failed = messages.index("Health check failed: exit code 1: not ready")
        assert messages[failed + 1].startswith("Sending SIGTERM to task ext-db")
        assert messages[failed + 2] == (
            'task "ext-db" unhealthy: health check failed 3 times in a row '
            "(exit code 1: not ready); restarting forever in 5s"
        )
        assert world.runtime.containers[0].signals == [signal.SIGTERM]
        await world.clock.advance(5)
        assert world.runtime.launched("ext-db") == 2
        # A new run starts a new start period: the next unhealthy restart is 50 s later.
        world.runtime.health["ext-db"] = READY
        await world.clock.advance(60)
        assert runner.health is Health.OK and world.runtime.launched("ext-db") == 2
        await world.supervisor.shutdown()

    scenario()


def test_unhealthy_without_restart_only_reports(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        check = health(retries=2, on_unhealthy=OnUnhealthy.NONE)
        world = World(tmp_path, make_service("db", policy=ServicePolicy(health=check)))
        world.runtime.health["ext-db"] = None  # hangs: the timeout ends each check
        world.supervisor.start_all()
        await world.clock.advance(100)
        runner = world.supervisor.runners["ext-db"]
        assert runner.health is Health.FAIL
        assert runner.last_health_message == "timed out after 3s"
        assert world.runtime.launched("ext-db") == 1
        assert world.state("ext-db") is ServiceState.RUNNING
        # One event for the change to Fail, not one per failed check.
        assert world.messages("ext-db").count("Health check failed: timed out after 3s") == 1
        await world.supervisor.shutdown()

    scenario()


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


def test_stop_timeout_of_the_service_overrides_the_executors(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        exporter = make_service("nfs", policy=ServicePolicy(stop_timeout=30))
        world = World(
            tmp_path,
            exporter,
            scripts={"ext-nfs": [Script(exit_code=None, ignore_sigterm=True)]},
        )
        world.supervisor.start_all()
        await settle()
        runner = world.supervisor.runners["ext-nfs"]
        task = asyncio.ensure_future(runner.stop())
        await world.clock.advance(29)  # the executor's own 10 s is long over
        assert world.runtime.containers[0].signals == [signal.SIGTERM]
        await world.clock.advance(1)
        await task
        assert world.runtime.containers[0].signals == [signal.SIGTERM, signal.SIGKILL]
        assert "still running 30s after SIGTERM" in world.messages("ext-nfs")[-2]
        assert runner.state is ServiceState.FINISHED

    scenario()


def test_restart_limit_fails_for_good_until_started_again(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        limited = make_service(
            "flaky", policy=ServicePolicy(restart_limit=RestartLimit(count=5, window=60))
        )
        world = World(tmp_path, limited, scripts={"ext-flaky": [Script(1)]})
        world.supervisor.start_all()
        # Runs fail at 0, 5, ..., 25: the sixth failure is more than 5 within 1m.
        await world.clock.advance(24)
        assert world.state("ext-flaky") is ServiceState.WAITING
        await world.clock.advance(1)
        assert world.runtime.launched("ext-flaky") == 6
        assert world.state("ext-flaky") is ServiceState.FAILED
        assert world.messages("ext-flaky")[-1] == (
            'restart limit reached (5 failures in 1m): task "ext-flaky" failed: exit code 1'
        )
        await world.clock.advance(600)
        assert world.runtime.launched("ext-flaky") == 6
        # `extsvc service ext-flaky start`: a new lifecycle with a clean record.
        assert world.supervisor.runner("ext-flaky").start()
        await world.clock.advance(24)
        assert world.runtime.launched("ext-flaky") == 11
        assert world.state("ext-flaky") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


def test_failures_spread_wider_than_the_window_never_reach_the_limit(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        limited = make_service(
            "slowfail", policy=ServicePolicy(restart_limit=RestartLimit(count=2, window=9))
        )
        world = World(tmp_path, limited, scripts={"ext-slowfail": [Script(1)]})
        world.supervisor.start_all()
        # One failure every 5 s: never more than 2 within any 9 s.
        await world.clock.advance(100)
        assert world.runtime.launched("ext-slowfail") == 21
        assert world.state("ext-slowfail") is ServiceState.WAITING
        await world.supervisor.shutdown()

    scenario()


def test_the_detail_view_shows_the_last_health_message_like_talosctl() -> None:
    service = {
        "id": "ext-db",
        "state": "Running",
        "health": {"healthy": False, "message": "exit code 1: not ready"},
        "lastHealthMessage": "exit code 1: not ready",
        "pid": None,
        "restarts": 0,
        "restartPolicy": "always",
        "events": [],
    }
    lines = service_detail(service, now=0.0).splitlines()
    assert lines[2:4] == ["HEALTH   Fail", "LAST HEALTH MESSAGE exit code 1: not ready"]
    assert "LAST HEALTH MESSAGE" not in service_detail({**service, "lastHealthMessage": ""}, 0.0)


def test_host_adaptation_only_removes_from_a_narrowed_capability_list() -> None:
    spec = {"process": {"capabilities": {s: ["CAP_NET_ADMIN", "CAP_SYS_RESOURCE"] for s in
                                         ("bounding", "effective", "permitted")}}}  # fmt: skip
    host = HostFacts(
        bounding_capabilities=frozenset(LINUX_CAPABILITIES) - {"CAP_SYS_RESOURCE"},
        can_lower_oom_score=False,
    )
    adapted, changes = adapt_spec(spec, host)
    assert adapted["process"]["capabilities"]["effective"] == ["CAP_NET_ADMIN"]
    assert [c.message for c in changes] == [
        "host adaptation: not granting CAP_SYS_RESOURCE (not in the executor's bounding set)"
    ]
    # What the block left out is not given back, even though the host could grant it.
    assert "CAP_SYS_ADMIN" not in adapted["process"]["capabilities"]["bounding"]
    # The compiled spec is left as Talos asks for it.
    assert spec["process"]["capabilities"]["effective"] == ["CAP_NET_ADMIN", "CAP_SYS_RESOURCE"]


# ----- what real daemons need (issue 17 item 7)

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


SPEC = {
    "process": {
        "args": ["/usr/sbin/chronyd", "-d"],
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
        "capabilities": {k: ["CAP_SETUID"] for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": True,
    }
}


def test_a_check_with_its_own_user_and_capabilities_runs_as_its_own_process(
    tmp_path: Path,
) -> None:
    @run
    async def scenario() -> None:
        check = replace(
            health(), user=(330, 331), capabilities=("CAP_DAC_OVERRIDE", "CAP_SYS_BOOT")
        )
        plain = make_service("plain", spec=SPEC, policy=ServicePolicy(health=health()))
        own = make_service("own", spec=SPEC, policy=ServicePolicy(health=check))
        host = HostFacts(frozenset(LINUX_CAPABILITIES) - {"CAP_SYS_BOOT"}, can_lower_oom_score=True)
        world = World(tmp_path, plain, own, host=host)
        world.supervisor.start_all()
        await settle()
        by_service = dict(
            zip([s for s, _, _ in world.runtime.execs], world.runtime.exec_processes, strict=True)
        )
        # Without user or capabilities: runc exec with the container's own process.
        assert by_service["ext-plain"] is None
        granted = ["CAP_DAC_OVERRIDE"]
        assert by_service["ext-own"] == {
            "args": ["/bin/check"],
            "env": ["PATH=/bin"],
            "user": {"uid": 330, "gid": 331},
            "capabilities": {"bounding": granted, "effective": granted, "permitted": granted},
            "noNewPrivileges": True,
        }
        # What the host cannot grant is said once, as for the service's own capabilities.
        assert (
            world.messages("ext-own").count(
                "host adaptation: not granting the health check CAP_SYS_BOOT "
                "(not in the executor's bounding set)"
            )
            == 1
        )
        await world.supervisor.shutdown()

    scenario()
