"""x-extsvc resources and capabilities reach the container, with real runc. Needs root."""

from __future__ import annotations

from pathlib import Path

import pytest

from extsvc.compiler.format.capabilities import names_from_mask
from extsvc.executor.runtime import cgroups
from tests.executor.realrunc import (
    IDLE,
    compile_plan,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_resource_limits_reach_the_container_cgroup(tmp_path: Path) -> None:
    name = unique("limited")
    block = {"resources": {"memory": "64Mi", "pids": 32, "cpus": 0.5}}
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE, extsvc=block)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        # cgroup v1 here: one directory per controller (v2 would say memory.max, pids.max).
        directories = cgroups.cgroup_dirs(f"/system/extensions/{name}")

        def value(file: str) -> str:
            (found,) = [d / file for d in directories if (d / file).exists()]
            return found.read_text().strip()

        assert value("memory.limit_in_bytes") == str(64 * 1024**2)
        assert value("pids.max") == "32"
        assert value("cpu.cfs_quota_us") == "50000"
        assert value("cpu.cfs_period_us") == "100000"
        assert daemon.stop() == 0


def test_two_capabilities_are_exactly_the_effective_set(tmp_path: Path) -> None:
    name = unique("caps")
    script = f"grep CapEff /proc/1/status; {IDLE}"
    block = {"capabilities": ["CAP_NET_RAW", "CAP_NET_ADMIN"]}
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script, extsvc=block)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        wait_for(lambda: bool(daemon.logs(f"ext-{name}")), 10, "the CapEff line")
        line = daemon.logs(f"ext-{name}")[0]
        assert line.startswith("CapEff:")
        assert names_from_mask(int(line.split()[1], 16)) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
        # Nothing to adapt: the host grants both, so no adaptation event names them.
        messages = [e["message"] for e in daemon.service(f"ext-{name}")["events"]]
        assert not [m for m in messages if "host adaptation: not granting" in m]
        assert daemon.stop() == 0
