"""What `extsvc run` does before its event loop exists, and the head start it gives boot.

First takes the service manager's variables out of the executor's environment
(executor.process.environment: before any child is spawned). Checks the host, loads the
plan (and the host-services file), locks the state dir and makes the executor a
child subreaper: everything that can refuse to run happens here, before the host is
touched (DESIGN §7).

Then the head start: importing asyncio and the supervisor takes longer
than a `runc create`, so the services that wait for nothing (no dependency of any
kind) have their containers' creation begun right here, before those imports; the
runtime takes each over as its own create (``RuncRuntime.create``) once the
loop runs, if the spec it is asked for is the one created from (it always is
unless a configuration document changed in between). Only when the state dir
holds nothing to recover: a previous executor's leftovers are removed first, on
the loop (executor.runtime.recovery), and then there is no head start.

Importable without asyncio, and kept light: every module imported here is on
boot's critical path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from extsvc.compiler.format.plan import Dependencies, Plan, PlanError, load_plan
from extsvc.executor.errors import EnvironmentMissingError, LaunchError
from extsvc.executor.errors import PlanError as ExecutorPlanError
from extsvc.executor.host.readiness import ReadinessRule, load_host_services
from extsvc.executor.options import DaemonOptions
from extsvc.executor.process import spawn
from extsvc.executor.process.environment import ServiceManager
from extsvc.executor.runtime import mounts, placement, recovery
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from extsvc.executor.runtime.bundles import HeadStart, begin_create, spec_key
from extsvc.executor.runtime.workspace import Workspace
from extsvc.executor.supervise.configwatch import ConfigDirectory

NO_DEPENDENCIES = Dependencies()


@dataclass(kw_only=True)
class Startup:
    """The daemon's inputs, checked, and the creates already begun (a record made once,
    by ``begin``: its fields are named where it is made)."""

    # What the service manager that started the executor gave it (sd_notify, watchdog).
    manager: ServiceManager
    binary: str
    plan: Plan
    host_services: dict[str, ReadinessRule]
    workspace: Workspace
    lock: recovery.StateLock
    host: HostFacts
    configs: ConfigDirectory
    # An earlier executor left containers, mounts or bundles: the daemon removes them
    # before anything starts, and nothing was begun here.
    leftovers: bool
    head_starts: list[HeadStart] = field(default_factory=list)


def check_environment(options: DaemonOptions) -> str:
    """The runtime binary's path; raises EnvironmentMissingError with the fix."""
    if os.geteuid() != 0:
        raise EnvironmentMissingError(
            "extsvc run must run as root (it mounts, creates cgroups and runs runc): "
            "run it with sudo or as root"
        )
    binary = shutil.which(options.runtime)
    if binary is None:
        raise EnvironmentMissingError(
            f"container runtime {options.runtime!r} not found: install runc "
            "(apt-get install runc) or pass --runtime PATH"
        )
    if options.overlay and not mounts.overlay_supported():
        raise EnvironmentMissingError(
            "the kernel has no overlay filesystem for the ephemeral rootfs: "
            "load it (modprobe overlay), or pass --no-overlay (development only: writes persist)"
        )
    return binary


def load(options: DaemonOptions) -> Plan:
    try:
        return load_plan(options.plan)
    except PlanError as error:
        raise ExecutorPlanError(str(error)) from None


def begin(options: DaemonOptions, notice: Callable[[str], None]) -> Startup:
    """Check, load, lock; then begin creating what waits for nothing. Raises ExecutorError."""
    manager = ServiceManager.take()
    binary = check_environment(options)
    plan = load(options)
    host_services = load_host_services(options.host_services)
    workspace = Workspace(options.state_dir)
    workspace.create()
    lock = recovery.StateLock.acquire(workspace)
    try:
        # Before any create: a container's init is re-parented to us when runc exits.
        spawn.become_subreaper()
        cgroups = place_cgroups(options.cgroup_parent)
        startup = Startup(
            manager=manager,
            binary=binary,
            plan=plan,
            host_services=host_services,
            workspace=workspace,
            lock=lock,
            host=HostFacts.probe(cgroups=cgroups),
            configs=ConfigDirectory(options.config_dir, workspace.state_dir / "configs", notice),
            leftovers=recovery.has_leftovers(workspace),
        )
        if not startup.leftovers:
            recovery.record_cgroup_parents(plan, workspace, cgroups)
            startup.head_starts = head_start(startup, options.overlay)
    except BaseException:
        lock.release()
        raise
    return startup


def place_cgroups(setting: str) -> placement.CgroupPlacement:
    """Where the containers' cgroups go (executor.runtime.placement); on cgroup v2 under our own
    cgroup, this process moves into a leaf first. Before any child is spawned."""
    cgroups = placement.probe(setting)
    try:
        placement.enter_leaf(cgroups)
    except OSError as error:
        raise EnvironmentMissingError(
            f"cannot move the executor into a leaf of its cgroup {cgroups.parent} "
            f"(cgroup v2 needs it to give the containers their controllers): {error.strerror}; "
            "is the unit delegated (Delegate=yes)? Or pass --cgroup-parent none"
        ) from None
    return cgroups


def head_start(startup: Startup, use_overlay: bool) -> list[HeadStart]:
    """Begin `runc create` for every service that waits for nothing.

    A service whose create cannot even begin is left to its runner, which tries
    again and reports why (an event, the restart policy): nothing is reported twice.
    """
    begun = []
    for service in startup.plan.services.values():
        if service.depends != NO_DEPENDENCIES:
            continue
        with contextlib.suppress(LaunchError):
            spec, _ = adapt_spec(startup.configs.apply(service), startup.host)
            call = begin_create(startup.binary, startup.workspace, service, spec, use_overlay)
            begun.append(HeadStart(service, spec_key(spec), call))
    return begun
