"""Leave no trace: clean up what a SIGKILLed executor left behind; lock the state dir.

Before anything starts, every container in our runc root is force-deleted, every
mount under the state dir's rootfs/ and overlay/ is unmounted and the cgroups of
those services are emptied and removed: a service must never find itself still
running. Only what *this* state dir records is touched: another executor (another
--state-dir) may run a service of the same name, hence in the same cgroup
(/system/extensions/<name>), and its processes are not ours to kill. Before each
container is created, ``cgroups.ensure_free`` refuses a cgroup that holds processes we
did not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from extsvc.compiler.format.plan import Plan, ServicePlan, cgroups_path, service_name
from extsvc.executor import cgroups, mounts
from extsvc.executor.errors import EnvironmentMissingError, LaunchError
from extsvc.executor.workspace import Workspace

if TYPE_CHECKING:  # not imported at run time: the start-up path locks before asyncio
    from extsvc.executor.runc import RuncRuntime

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


def service_cgroup(service: ServicePlan) -> str:
    return str(service.spec.get("linux", {}).get("cgroupsPath") or cgroups_path(service.name))


def cgroup_paths(plan: Plan, extra_names: set[str]) -> set[str]:
    paths = {service_cgroup(service) for service in plan.services.values()}
    paths.update(cgroups_path(name) for name in extra_names)
    return paths


def own_cgroup_paths(plan: Plan, names: set[str]) -> set[str]:
    """The cgroups of ``names`` (services this state dir has traces of)."""
    by_name = {service.name: service for service in plan.services.values()}
    return {service_cgroup(by_name[n]) if n in by_name else cgroups_path(n) for n in names}


def has_leftovers(workspace: Workspace) -> bool:
    """Whether an earlier executor left anything here (a container, a rootfs, a bundle)."""
    try:
        containers = any(workspace.runc_root.iterdir())
    except OSError:
        containers = False
    return containers or bool(workspace.leftover_names())


async def clean_leftovers(plan: Plan, runtime: RuncRuntime) -> list[str]:
    """Remove containers, mounts, bundles and cgroups of a previous executor; say what went."""
    workspace = runtime.workspace
    cleaned: list[str] = []
    names = workspace.leftover_names()
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
    for path in sorted(own_cgroup_paths(plan, names)):
        cgroups.kill(path)
        if any(d.exists() for d in cgroups.cgroup_dirs(path)):
            cgroups.remove(path)
            cleaned.append(f"cgroup {path}")
    return cleaned


def kill_service_processes(plan: Plan) -> int:
    """SIGKILL every process in a service cgroup (a shutdown that could not finish)."""
    return sum(cgroups.kill(path) for path in cgroup_paths(plan, set()))


def record_cgroup_parents(plan: Plan, workspace: Workspace) -> None:
    """Remember which cgroup parents existed before our first run (kept across restarts)."""
    record = workspace.state_dir / CGROUP_PARENTS_FILE
    if record.exists():
        return
    existing: set[str] = set()
    for path in cgroup_paths(plan, set()):
        existing |= cgroups.existing_parents(path)
    record.write_text(json.dumps(sorted(existing)))


def remove_created_cgroup_parents(plan: Plan, workspace: Workspace) -> None:
    """rmdir the empty cgroup parents (e.g. /system/extensions) that we created."""
    record = workspace.state_dir / CGROUP_PARENTS_FILE
    try:
        existed = set(json.loads(record.read_text()))
    except (OSError, ValueError):
        return
    now: set[str] = set()
    for path in cgroup_paths(plan, set()):
        now |= cgroups.existing_parents(path)
    cgroups.remove_empty([Path(p) for p in now - existed])
    if not (now - existed) or all(not Path(p).exists() for p in now - existed):
        record.unlink(missing_ok=True)
