"""Health checks with a fake clock and a fake runtime: a check gates dependents and restarts an
unhealthy service, without a check Running is enough, the detail view shows the last message,
and a check with its own user runs as its own process."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES
from extsvc.compiler.format.servicepolicy import OnUnhealthy, ServicePolicy
from extsvc.executor.cli.servicetext import service_detail
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.service.health import Health
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from tests.executor.fakes import NOT_READY, READY, health_check, make_service
from tests.executor.world import World, run


def test_a_dependent_starts_only_once_its_dependency_is_healthy(tmp_path: Path) -> None:
    @run
    async def scenario() -> None:
        db = make_service("db", policy=ServicePolicy(health=health_check(retries=1)))
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
        check = health_check(retries=3, start_period=30, on_unhealthy=OnUnhealthy.RESTART)
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
        check = health_check(retries=2, on_unhealthy=OnUnhealthy.NONE)
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


# ----- what real daemons need


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
            health_check(), user=(330, 331), capabilities=("CAP_DAC_OVERRIDE", "CAP_SYS_BOOT")
        )
        plain = make_service("plain", spec=SPEC, policy=ServicePolicy(health=health_check()))
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
