"""The synchronous half of creating a container: the runtime bundle runc is given.

Shared by ``RuncRuntime.create`` and the start-up path (executor.daemon.startup), which
prepares the first bundles before the event loop exists: the same checks, the same
mounts, the same bytes, whoever asks.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import ServicePlan, creatable_mount_source
from extsvc.compiler.format.servicepolicy import MOUNT_SOURCE_MODE, MountSource
from extsvc.executor.errors import LaunchError
from extsvc.executor.process import spawn
from extsvc.executor.runtime import cgroups
from extsvc.executor.runtime.workspace import Workspace

PID_FILE = "init.pid"


def spec_key(spec: dict[str, Any]) -> str:
    """Equal for equal specs: a container created from one is the container of the other."""
    return json.dumps(spec, sort_keys=True)


def prepare_bundle(
    workspace: Workspace, service: ServicePlan, spec: dict[str, Any], use_overlay: bool
) -> Path:
    """Check the cgroup, create mount sources, mount the ephemeral rootfs and write the
    runtime config.json; returns the bundle directory. Raises LaunchError."""
    cgroups_path = spec.get("linux", {}).get("cgroupsPath")
    if cgroups_path:
        # Never next to processes this executor did not start (stopping ours would
        # kill them too): raises.
        cgroups.ensure_free(cgroups_path, service.name)
    runtime_spec = dict(spec)
    root = dict(runtime_spec.get("root", {}))
    lower = root.get("path", service.rootfs)
    create_mount_sources(service.mount_sources, workspace.state_dir)
    if use_overlay:
        root["path"] = str(workspace.mount_rootfs(service.name, lower))
    runtime_spec["root"] = root
    return workspace.write_runtime_config(service.name, runtime_spec)


@dataclass(frozen=True)
class CreateCall:
    """A `runc create` in flight, and the read end of the one pipe that is its stdout and
    stderr, then the container's (runc passes a detached container's stdio through)."""

    pid: int
    pidfd: int
    output_fd: int
    pid_file: Path


@dataclass(frozen=True)
class HeadStart:
    """A create begun before the event loop existed (executor.daemon.startup), for the runtime
    to take over when the service asks for its container with the same spec."""

    service: ServicePlan
    spec_key: str
    call: CreateCall


def begin_create(
    binary: str,
    workspace: Workspace,
    service: ServicePlan,
    spec: dict[str, Any],
    use_overlay: bool,
) -> CreateCall:
    """Prepare the bundle and spawn `runc create` (not waited for). Raises LaunchError;
    a runtime that cannot even be spawned leaves nothing behind."""
    bundle = prepare_bundle(workspace, service, spec, use_overlay)
    pid_file = bundle / PID_FILE
    argv = [
        binary, "--root", str(workspace.runc_root),
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), service.id,
    ]  # fmt: skip
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        # Its own session and group: a hung create is killed with all it forked.
        pid, pidfd = spawn.spawn(argv, stdout=write_end, stderr=write_end)
    except OSError as error:
        os.close(read_end)
        discard_bundle(workspace, service, spec.get("linux", {}).get("cgroupsPath"))
        raise LaunchError(f"cannot run {binary}: {error.strerror}") from None
    finally:
        os.close(write_end)  # runc and then the container hold their own copies
    return CreateCall(pid, pidfd, read_end, pid_file)


def discard_bundle(workspace: Workspace, service: ServicePlan, cgroups_path: str | None) -> None:
    """Remove the cgroup (``cgroups_path``: where this host put it, executor.runtime.placement),
    unmount the rootfs, remove the runtime bundle (no container left). The cgroup first:
    the bundle's config.json is what recovery reads to find it."""
    if cgroups_path:
        cgroups.remove(cgroups_path)
    workspace.unmount_rootfs(service.name)
    workspace.remove_bundle(service.name)


def create_mount_sources(sources: Iterable[MountSource], state_dir: Path) -> None:
    """Create each missing mount source (root:root 0700, as Talos), only where
    docs/executor.md allows: below /var or /run and outside the state dir. The
    compiler lists no other in a plan; this holds for a plan written by hand or by an
    older compiler.

    A source x-extsvc gave another owner or mode gets them whether this run created
    it or an earlier one did (systemd-tmpfiles' ``d``): a daemon that drops root
    needs its directory, whoever made it. Only the directory itself, never through
    a symbolic link, and only where a missing source could have been created."""
    for source in sources:
        if not os.path.isdir(source.path):
            if not _may_create(source.path, state_dir):
                raise LaunchError(
                    f"mount source {source.path!r} is missing, and extsvc creates missing "
                    "mount sources only below /var or /run, outside its state directory"
                )
            try:
                os.makedirs(source.path, mode=MOUNT_SOURCE_MODE, exist_ok=True)
            except OSError as error:
                raise LaunchError(
                    f"cannot create mount source {source.path}: {error.strerror}"
                ) from None
        if source.owned:
            _give_owner_and_mode(source, state_dir)


def _may_create(path: str, state_dir: Path) -> bool:
    state = os.path.realpath(state_dir)
    real = os.path.realpath(path)  # as makedirs would follow symlinks
    return creatable_mount_source(path) and real != state and not real.startswith(state + "/")


def _give_owner_and_mode(source: MountSource, state_dir: Path) -> None:
    if not _may_create(source.path, state_dir):
        raise LaunchError(
            f"mount source {source.path!r}: extsvc gives an owner and mode only to mount "
            "sources below /var or /run, outside its state directory"
        )
    try:
        status = os.lstat(source.path)
        if stat.S_ISLNK(status.st_mode):
            # chown through it would change whatever it points to (/etc, say).
            raise LaunchError(
                f"mount source {source.path} is a symbolic link: extsvc gives an owner "
                "and mode only to a directory itself"
            )
        if (status.st_uid, status.st_gid) != (source.uid, source.gid):
            os.chown(source.path, source.uid, source.gid, follow_symlinks=False)
        if stat.S_IMODE(status.st_mode) != source.mode:
            os.chmod(source.path, source.mode, follow_symlinks=False)
    except OSError as error:
        raise LaunchError(
            f"cannot give mount source {source.path} owner {source.uid}:{source.gid} "
            f"and mode {source.mode:04o}: {error.strerror}"
        ) from None
