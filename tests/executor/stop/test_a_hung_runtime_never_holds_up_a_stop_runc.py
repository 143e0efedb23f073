"""A hung runtime or readiness command never holds up a stop, with real runc: every runtime call is
bounded, a stop and a shutdown always finish, and nothing a fault or a cycle of starts and stops
created outlives the executor. Needs root."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import psutil
import pytest

from extsvc.executor.runtime import cgroups, mounts
from extsvc.executor.service.conditions import READINESS_COMMAND_TIMEOUT as READINESS_TIMEOUT
from tests.executor.faults import RUNTIME_TIMEOUT, FaultyRuntime
from tests.executor.realrunc import (
    IDLE,
    alive,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

# 20 cycles, so that a leak of one item per cycle shows: 47-62 s measured on the loaded
# 2-CPU host (load average 12-30).
DAG_CYCLES = int(os.environ.get("DAG_CYCLES", "20"))


def test_a_stop_cancels_a_hung_create_at_once(tmp_path: Path) -> None:
    """The runtime timeout is long here: the stop, not the timeout, ends the hang."""
    name = unique("stop-hung")
    runtime = FaultyRuntime(tmp_path).hang("create")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with running_daemon(
        tmp_path, out, [name], "--runtime", str(runtime.path), "--runtime-timeout", "10m"
    ) as daemon:
        wait_for(lambda: runtime.hangs_seen() == 1, 20, "runc create to hang")
        assert daemon.state(f"ext-{name}") == "Preparing"
        assert daemon.control("stop", f"ext-{name}")["ok"]
        service = daemon.service(f"ext-{name}")
        assert service["state"] == "Finished"
        assert messages(service)[-1] == "Service stopped"
        assert runtime.hung_processes() == []
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_shutdown_finishes_when_the_runtime_hangs_on_every_call(tmp_path: Path) -> None:
    """Running services, then runc hangs on delete too: the shutdown still ends, with
    no container process and no hung runtime left."""
    names = [unique("hang-all-a"), unique("hang-all-b")]
    runtime = FaultyRuntime(tmp_path)
    out, _ = compile_plan(tmp_path, {n: shell_service(n, IDLE) for n in names})
    with running_daemon(
        tmp_path, out, names, "--runtime", str(runtime.path), *RUNTIME_TIMEOUT
    ) as daemon:
        pids = [daemon.wait_state(f"ext-{n}", "Running")["pid"] for n in names]
        runtime.hang("create", "start", "delete", "list")
        assert daemon.stop(timeout=60) == 0
        assert "Cleanup incomplete: runc delete did not finish within 3s" in daemon.stderr()
        assert runtime.hung_processes() == []
        for pid in pids:
            assert not alive(pid)
        # runc's own state of the containers stays (runc never answered); the next start
        # removes it, as after a crash (start/test_interrupted_start_leaves_nothing_runc.py:
        # test_sigkill_mid_start_then_restart_leaves_nothing).
        assert traces(daemon.state_dir, names) != []
        runtime.hang()
        with running_daemon(tmp_path, out, names, "--runtime", str(runtime.path)) as next_run:
            for name in names:
                next_run.wait_state(f"ext-{name}", "Running")
            assert "cleaned up after a previous executor: container" in next_run.stderr()
            assert next_run.stop() == 0
    assert traces(tmp_path / "state", names) == []


def test_sigterm_while_a_readiness_command_hangs_exits_promptly(tmp_path: Path) -> None:
    name = unique("wait-host")
    host_id = unique("hostsvc")
    marker = tmp_path / "readiness.pid"
    hosts = tmp_path / "host-services.yaml"
    hosts.write_text(json.dumps({host_id: {"command": f"echo $$ > {marker}; exec sleep 3600"}}))
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, IDLE, depends=[{"service": host_id}])}
    )
    with running_daemon(tmp_path, out, [name], "--host-services", str(hosts)) as daemon:
        wait_for(marker.exists, 20, "the readiness command to run")
        readiness_pid = int(marker.read_text())
        # The only sign that a shutdown waited for the readiness command is that it ended
        # no sooner than the command's timeout (fixed at 10 s, not an option): the
        # deadline is that moment, not a guess at how fast a shutdown is.
        killed_by_timeout = psutil.Process(readiness_pid).create_time() + READINESS_TIMEOUT
        assert daemon.stop(timeout=killed_by_timeout - time.time()) == 0
        assert not alive(readiness_pid)
    assert traces(tmp_path / "state", [name]) == []


def test_a_random_50_service_dag_started_and_stopped_repeatedly_leaks_nothing(
    tmp_path: Path,
) -> None:
    """Each cycle: every service stopped (dependents first) and started again through the
    control socket, until all 50 are Running. The executor's children (one container
    init per service), zombies, mounts, fds and cgroup dirs are counted before the
    first cycle and after the last. DAG_CYCLES (default 20) sets the count."""
    rng = random.Random(11)
    names = [unique(f"dag{i:02d}") for i in range(50)]
    services = {}
    for index, name in enumerate(names):
        parents = rng.sample(names[:index], min(index, rng.randint(0, 2)))
        depends = [{"service": f"ext-{p}"} for p in parents] or None
        services[name] = shell_service(name, IDLE, depends=depends)
    out, _ = compile_plan(tmp_path, services)
    ids = [f"ext-{n}" for n in names]
    with running_daemon(tmp_path, out, names) as daemon:
        assert daemon.process is not None
        executor = psutil.Process(daemon.process.pid)

        def all_running() -> bool:
            listed = daemon.client.request({"op": "services"})["services"]
            return all(s["state"] == "Running" for s in listed)

        def counts() -> tuple[int, int, int, int, int]:
            children = executor.children()
            zombies = sum(c.status() == psutil.STATUS_ZOMBIE for c in children)
            mounts_now = len(mounts.mounts_under(daemon.state_dir))
            cgroup_dirs = sum(
                d.exists() for n in names for d in cgroups.cgroup_dirs(f"/system/extensions/{n}")
            )
            return len(children), zombies, mounts_now, executor.num_fds(), cgroup_dirs

        wait_for(all_running, 120, "50 services Running")
        before = counts()
        for _ in range(DAG_CYCLES):
            for service_id in reversed(ids):  # dependents first
                daemon.control("stop", service_id)
            for service_id in ids:
                daemon.client.request({"op": "start", "id": service_id, "wait": False})
            wait_for(all_running, 120, "50 services Running again")
        assert counts() == before
        assert daemon.stop(timeout=120) == 0
    assert traces(tmp_path / "state", names) == []
