"""Leave no trace: clean up what a SIGKILLed executor left behind; lock the state dir.

Before anything starts, every container in our runc root is force-deleted, every
mount under the state dir's rootfs/ and overlay/ is unmounted and the cgroups of
those services are emptied and removed: a service must never find itself still
running. Only what *this* state dir records is touched: another executor (another
--state-dir) may run a service of the same name, hence in the same cgroup
(/system/extensions/<name>), and its processes are not ours to kill. Before each
container is created, ``cgroups.ensure_free`` refuses a cgroup that holds processes we
did not start.

A service's cgroup is where this host puts it (executor.runtime.placement: inside the
executor's systemd unit, or as compiled); a leftover runtime bundle names the one its
container was created in, which is looked at too (an earlier executor may have run
with another placement).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from extsvc.compiler.format.plan import Plan, ServicePlan, cgroups_path
from extsvc.compiler.format.serviceids import service_name
from extsvc.executor.errors import EnvironmentMissingError, LaunchError
from extsvc.executor.runtime import cgroups, mounts
from extsvc.executor.runtime.placement import CgroupPlacement
from extsvc.executor.runtime.workspace import Workspace

if TYPE_CHECKING:  # not imported at run time: the start-up path locks before asyncio
    from extsvc.executor.runtime.runc import RuncRuntime

CGROUP_PARENTS_FILE = "cgroup-parents.json"


@dataclass
class StateLock:
    """An flock on <state>/lock held for the daemon's lifetime (the kernel drops it on death)."""

    fd: int

    @classmethod
    def acquire(cls, workspace: Workspace) -> StateLock:
        path = workspace.state_dir / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise EnvironmentMissingError(
                f"another `extsvc run` (PID {holder}) is using the state dir "
                f"{workspace.state_dir}: stop it first, or pass a different --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def service_cgroup(service: ServicePlan, placement: CgroupPlacement) -> str:
    compiled = service.spec.get("linux", {}).get("cgroupsPath") or cgroups_path(service.name)
    return placement.place(str(compiled))


def cgroup_paths(plan: Plan, placement: CgroupPlacement) -> set[str]:
    return {service_cgroup(service, placement) for service in plan.services.values()}


def own_cgroup_paths(
    plan: Plan, names: set[str], placement: CgroupPlacement, workspace: Workspace
) -> set[str]:
    """The cgroups of ``names`` (services this state dir has traces of): where this
    host puts them, and where a leftover runtime bundle says its container was."""
    by_name = {service.name: service for service in plan.services.values()}
    paths = set()
    for name in names:
        if name in by_name:
            paths.add(service_cgroup(by_name[name], placement))
        else:
            paths.add(placement.place(cgroups_path(name)))
        recorded = recorded_cgroup(workspace, name)
        if recorded:
            paths.add(recorded)
    return paths


def recorded_cgroup(workspace: Workspace, name: str) -> str | None:
    """The cgroupsPath in ``name``'s runtime bundle, if one was left."""
    try:
        spec = json.loads((workspace.bundle_dir(name) / "config.json").read_text())
        path = spec["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) and path.startswith("/") else None


def has_leftovers(workspace: Workspace) -> bool:
    """Whether an earlier executor left anything here (a container, a rootfs, a bundle)."""
    try:
        containers = any(workspace.runc_root.iterdir())
    except OSError:
        containers = False
    return containers or bool(workspace.leftover_names())


async def clean_leftovers(
    plan: Plan, runtime: RuncRuntime, placement: CgroupPlacement
) -> list[str]:
    """Remove containers, mounts, bundles and cgroups of a previous executor; say what went."""
    # Here, not at the top: start-up imports this module before the event loop exists,
    # and only a start with leftovers needs the killing that waits.
    from extsvc.executor.runtime.kills import empty_cgroup

    workspace = runtime.workspace
    cleaned: list[str] = []
    names = workspace.leftover_names()
    # Read before anything is removed: the bundles name the cgroups their containers had.
    leftover_cgroups = own_cgroup_paths(plan, names, placement, workspace)
    for container in await runtime.list_containers():
        container_id = str(container.get("id", ""))
        if not container_id:
            continue
        try:
            await runtime.remove_container(container_id)
        except LaunchError as error:
            cleaned.append(f"container {container_id} NOT removed: {error}")
            continue
        cleaned.append(f"container {container_id} ({container.get('status', 'unknown')})")
        names.add(service_name(container_id))
    state = workspace.state_dir
    for point in mounts.mounts_under(state / "rootfs", state / "overlay"):
        mounts.unmount(point)
        cleaned.append(f"mount {point}")
    for name in names:
        workspace.unmount_rootfs(name)
        workspace.remove_bundle(name)
    leftover_cgroups |= own_cgroup_paths(plan, names, placement, workspace)
    for path in sorted(leftover_cgroups):
        if not any(d.exists() for d in cgroups.cgroup_dirs(path)):
            continue
        # Killed and waited for: a process that has not ended yet holds its cgroup, and
        # the service's next container would find it "already holds processes".
        left = await empty_cgroup(path, runtime.command_timeout)
        stuck = cgroups.remove(path)
        if left or stuck:
            why = f"processes {sorted(left)} did not end" if left else f"{stuck[0]} is busy"
            cleaned.append(f"cgroup {path} NOT removed: {why}")
        else:
            cleaned.append(f"cgroup {path}")
    return cleaned


def kill_service_processes(plan: Plan, placement: CgroupPlacement) -> int:
    """SIGKILL every process in a service cgroup (a shutdown that could not finish)."""
    return sum(cgroups.kill(path) for path in cgroup_paths(plan, placement))


def record_cgroup_parents(plan: Plan, workspace: Workspace, placement: CgroupPlacement) -> None:
    """Remember which cgroup parents existed before our first run (kept across restarts)."""
    record = workspace.state_dir / CGROUP_PARENTS_FILE
    if record.exists():
        return
    existing: set[str] = set()
    for path in cgroup_paths(plan, placement):
        existing |= cgroups.existing_parents(path)
    record.write_text(json.dumps(sorted(existing)))


def remove_created_cgroup_parents(
    plan: Plan, workspace: Workspace, placement: CgroupPlacement
) -> None:
    """rmdir the empty cgroup parents (e.g. /system/extensions) that we created."""
    record = workspace.state_dir / CGROUP_PARENTS_FILE
    try:
        existed = set(json.loads(record.read_text()))
    except (OSError, ValueError):
        return
    now: set[str] = set()
    for path in cgroup_paths(plan, placement):
        now |= cgroups.existing_parents(path)
    cgroups.remove_empty([Path(p) for p in now - existed])
    if not (now - existed) or all(not Path(p).exists() for p in now - existed):
        record.unlink(missing_ok=True)
