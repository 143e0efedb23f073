"""Health checks with real runc containers: an unhealthy service is restarted, a dependent waits
until its dependency is healthy, a hanging check is killed at its timeout. Needs root."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import pytest

from tests.executor.faults import FaultyRuntime
from tests.executor.realrunc import (
    IDLE,
    bind,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def check(path: str, **settings: object) -> dict[str, object]:
    """A health check that passes while ``path`` exists in the container."""
    return {"exec": ["/bin/sh", "-c", f"test -e {path} || {{ echo missing {path}; exit 1; }}"],
            "interval": "200ms", "timeout": "2s", **settings}  # fmt: skip


def test_a_failing_health_check_makes_the_service_unhealthy_then_restarted(
    tmp_path: Path,
) -> None:
    name = unique("flaky")
    # Healthy while the host's file exists; the test removes it once a check passed (a
    # timed `sleep; rm` in the container lost the race with the first check on a busy host).
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok").touch()
    block = {"health": check("/data/ok", retries=2, onUnhealthy="restart")}
    yaml = shell_service(name, IDLE, mounts=[bind(data, "/data")], extsvc=block)
    out, _ = compile_plan(tmp_path, {name: yaml})
    with running_daemon(tmp_path, out, [name]) as daemon:
        service_id = f"ext-{name}"
        wait_for(
            lambda: "Health check successful" in messages(daemon.service(service_id)),
            30,
            "a passing check",
        )
        (data / "ok").unlink()
        wait_for(lambda: daemon.service(service_id)["runs"] >= 2, 30, "a restart")
        seen = messages(daemon.service(service_id))
        healthy = seen.index("Health check successful")
        failed = seen.index("Health check failed: exit code 1: missing /data/ok", healthy)
        assert seen[failed + 2].startswith(
            f'task "{service_id}" unhealthy: health check failed 2 times in a row '
            "(exit code 1: missing /data/ok); restarting forever in"
        )
        assert daemon.stop() == 0


def test_a_dependent_starts_only_after_its_dependency_is_healthy(tmp_path: Path) -> None:
    db, app = unique("db"), unique("app")
    services = {
        db: shell_service(db, f"sleep 1; touch /run/ready; {IDLE}",
                          extsvc={"health": check("/run/ready")}),
        app: shell_service(app, IDLE, depends=[{"service": f"ext-{db}"}]),
    }  # fmt: skip
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, [db, app]) as daemon:
        started = daemon.wait_state(f"ext-{app}", "Running")
        db_events = daemon.service(f"ext-{db}")["events"]
        (healthy_at,) = [e["time"] for e in db_events if e["message"] == "Health check successful"]
        app_started_at = next(
            e["time"] for e in started["events"] if e["message"].startswith("Started task")
        )
        assert app_started_at >= healthy_at
        assert f'Waiting for service "ext-{db}" to be "up" and healthy' in messages(started)
        assert daemon.service(f"ext-{db}")["health"]["healthy"] is True
        assert daemon.stop() == 0


def processes_running(argv: list[str]) -> set[int]:
    return {p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == argv}


def still_running(pid: int, argv: list[str]) -> bool:
    """``pid`` is still ``argv`` and not a zombie."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        return process.cmdline() == argv and process.status() != psutil.STATUS_ZOMBIE
    return False


def test_a_hanging_health_check_is_killed_at_its_timeout(tmp_path: Path) -> None:
    name = unique("hang")
    # A sleep no other test (or engineer running this one) starts at the same time.
    check = ["/bin/sleep", str(1000 + int(name.rsplit("-", 1)[1], 16) % 100000)]
    block = {"health": {"exec": check, "interval": "300ms", "timeout": "300ms"}}
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE, extsvc=block)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        service_id = f"ext-{name}"
        wait_for(
            lambda: daemon.service(service_id)["lastHealthMessage"] == "timed out after 300ms",
            15,
            "a timed-out check",
        )
        seen: set[int] = set()

        def checks_seen(count: int) -> bool:
            seen.update(processes_running(check))
            return len(seen) >= count

        wait_for(lambda: checks_seen(5), 30, "five checks")  # each killed at its timeout

        # Left alive, every check seen would stay (its sleep lasts over 1000 s); killed,
        # each is gone soon after its timeout. How soon is no matter on a busy host (it
        # once counted the processes at one moment and found 3 where it allowed 2).
        wait_for(
            lambda: not [pid for pid in seen if still_running(pid, check)], 30, "every check killed"
        )
        assert daemon.service(service_id)["health"] == {
            "healthy": False,
            "message": "timed out after 300ms",
        }
        assert daemon.stop() == 0


def test_a_hanging_health_check_is_killed_even_when_runc_names_it_late(tmp_path: Path) -> None:
    """`runc exec`'s process has a session of its own: killing runc exec at the timeout
    does not kill it, only its PID file names it, and runc writes that only once it
    started it, which on a loaded host came after the timeout: every such check stayed
    (seen under CI=true make test). The runtime here writes the PID file 2 s late: past
    the timeout + 1 s at which the health probe used to cancel the runtime's wait for
    it (so the check stayed, however quiet the host), within EXEC_KILL_WAIT."""
    name = unique("hanglate")
    check = ["/bin/sleep", str(1000 + int(name.rsplit("-", 1)[1], 16) % 100000)]
    block = {"health": {"exec": check, "interval": "300ms", "timeout": "300ms"}}
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE, extsvc=block)})
    runtime = FaultyRuntime(tmp_path).slow_exec_pid_file(2.0)
    with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as daemon:
        seen: set[int] = set()

        def checks_seen(count: int) -> bool:
            seen.update(processes_running(check))
            return len(seen) >= count

        wait_for(lambda: checks_seen(3), 60, "three checks")

        wait_for(
            lambda: not [pid for pid in seen if still_running(pid, check)], 30, "every check killed"
        )
        assert daemon.service(f"ext-{name}")["health"]["message"] == "timed out after 300ms"
        assert daemon.stop() == 0
