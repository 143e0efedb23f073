"""Containers placed inside the executor's systemd unit (executor.runtime.placement), real runc.

Without a systemd here, the test does what systemd does for a unit: it creates the
unit's cgroup in every hierarchy, starts the executor in it with $INVOCATION_ID set.
Under a real systemd the same is checked by the systemd rig (`systemctl status`).
Needs root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from extsvc.executor.runtime import cgroups
from tests.executor.realrunc import (
    IDLE,
    Daemon,
    alive,
    compile_plan,
    service_cgroup,
    shell_service,
    traces,
    unique,
)

pytestmark = pytest.mark.runc

ENTER_CGROUP = 'for f in $EXTSVC_TEST_PROCS; do echo $$ > "$f"; done; exec "$@"'


@contextlib.contextmanager
def unit_cgroup() -> Iterator[str]:
    """A cgroup as systemd makes one for a unit, in every hierarchy; removed afterwards
    with whatever is still in it."""
    path = f"/extsvc-test-{uuid.uuid4().hex[:8]}.service"
    made = []
    for hierarchy in cgroups.hierarchies():
        directory = hierarchy / path.lstrip("/")
        directory.mkdir()
        made.append(directory)
        for inherited in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty until copied
            if (hierarchy / inherited).exists():
                (directory / inherited).write_text((hierarchy / inherited).read_text())
    try:
        yield path
    finally:
        cgroups.kill(path)
        cgroups.remove(path)
        for directory in made:
            with contextlib.suppress(FileNotFoundError):
                directory.rmdir()


def start_in_unit(daemon: Daemon, unit: str) -> Daemon:
    procs = " ".join(str(d / "cgroup.procs") for d in cgroups.cgroup_dirs(unit))
    daemon.wrapper = ["sh", "-c", ENTER_CGROUP, "sh"]
    return daemon.start(env={"INVOCATION_ID": uuid.uuid4().hex, "EXTSVC_TEST_PROCS": procs})


def cgroup_of(pid: int) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy: path}."""
    found = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        found[controllers or "unified"] = path
    return found


def test_a_unit_s_containers_live_in_its_cgroup_and_recovery_finds_them(
    tmp_path: Path,
) -> None:
    name = unique("inunit")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    service_id = f"ext-{name}"
    with unit_cgroup() as unit:
        first = Daemon(tmp_path, out, [name], cgroup_parent=unit)
        second = Daemon(tmp_path, out, [name], cgroup_parent=unit)
        try:
            start_in_unit(first, unit)
            running = first.wait_state(service_id, "Running")
            placed = service_cgroup(name, unit)
            # Every hierarchy, the one systemd tracks units in included.
            assert set(cgroup_of(running["pid"]).values()) == {placed}
            assert any(
                f"host adaptation: cgroup {placed} instead of /system/extensions/{name}" in a
                for a in running["adaptations"]
            ), running["adaptations"]
            assert not any(d.exists() for d in cgroups.cgroup_dirs(f"/system/extensions/{name}"))

            # A killed executor (no systemd here to kill the rest), and runc's record of
            # the container lost with it: the next one finds the container's cgroup
            # where it was placed, empties and removes it, and starts the service once.
            first.kill()
            assert alive(running["pid"])
            shutil.rmtree(first.state_dir / "runc" / service_id)
            start_in_unit(second, unit)
            again = second.wait_state(service_id, "Running")
            assert again["pid"] != running["pid"] and not alive(running["pid"])
            assert f"cleaned up after a previous executor: cgroup {placed}" in second.stderr()
            started = [e for e in again["events"] if e["message"].startswith("Started task")]
            assert len(started) == 1, started

            assert second.stop() == 0
            assert traces(second.state_dir, [name], unit) == []
            # Only the unit's own cgroup is left, as systemd made it (it removes it).
            left = [p for d in cgroups.cgroup_dirs(unit) for p in d.iterdir() if p.is_dir()]
            assert left == []
        finally:
            for daemon in (second, first):
                daemon.force_cleanup()


def test_an_explicit_parent_is_created_and_removed(tmp_path: Path) -> None:
    name = unique("parent")
    parent = f"/extsvc-test-{uuid.uuid4().hex[:8]}"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    daemon = Daemon(tmp_path, out, [name], "--cgroup-parent", parent, cgroup_parent=parent)
    try:
        daemon.start()
        running = daemon.wait_state(f"ext-{name}", "Running")
        assert set(cgroup_of(running["pid"]).values()) == {service_cgroup(name, parent)}
        assert daemon.stop() == 0
        assert traces(daemon.state_dir, [name], parent) == []
        # The parent did not exist before: the executor created it, and removed it.
        assert not any(d.exists() for d in cgroups.cgroup_dirs(parent))
    finally:
        daemon.force_cleanup()
        with contextlib.suppress(OSError):
            cgroups.remove(parent)
        if daemon.process is not None and daemon.process.poll() is None:
            os.kill(daemon.process.pid, signal.SIGKILL)
