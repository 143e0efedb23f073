"""`extsvc run`: check the host, load the plan, clean up, supervise, stop cleanly on a signal.

Reads like the list of its stages (STYLE: a main that reads like the pipeline).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from extsvc.compiler.format.plan import Plan, load_plan
from extsvc.compiler.format.plan import PlanError as FormatPlanError
from extsvc.executor import mounts, reaper, recovery
from extsvc.executor.adapt import HostFacts
from extsvc.executor.clock import SystemClock
from extsvc.executor.control import SOCKET_NAME, ControlHandler, ControlServer
from extsvc.executor.errors import EnvironmentMissingError, PlanError
from extsvc.executor.extconfig import ConfigDirectory
from extsvc.executor.hostservices import load_host_services
from extsvc.executor.logs import ConsoleKind, make_console
from extsvc.executor.runc import RuncRuntime
from extsvc.executor.runner import RestartTiming, RunnerSettings
from extsvc.executor.states import Event
from extsvc.executor.supervisor import Supervisor
from extsvc.executor.workspace import Workspace

DEFAULT_STATE_DIR = Path("/run/extsvc")
DEFAULT_LOG_DIR = Path("/var/log/extsvc")


@dataclass(frozen=True)
class DaemonOptions:
    plan: Path
    state_dir: Path = DEFAULT_STATE_DIR
    log_dir: Path = DEFAULT_LOG_DIR
    runtime: str = "runc"
    host_services: Path | None = None
    config_dir: Path | None = None
    console: ConsoleKind = ConsoleKind.STDOUT
    restart_interval: float = 5.0
    restart_backoff_max: float | None = None
    stop_timeout: float = 10.0
    check_interval: float = 1.0
    overlay: bool = True


@dataclass(frozen=True)
class Reporter:
    """How the daemon talks to whoever started it (the CLI prints; tests collect)."""

    on_event: Callable[[str, Event], None] | None = None
    on_notice: Callable[[str], None] | None = None

    def notice(self, message: str) -> None:
        if self.on_notice is not None:
            self.on_notice(message)


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


def prepare(options: DaemonOptions) -> tuple[str, Plan]:
    """Everything that can fail before the daemon touches the host."""
    binary = check_environment(options)
    try:
        return binary, load_plan(options.plan)
    except FormatPlanError as error:
        raise PlanError(str(error)) from None


async def run_daemon(options: DaemonOptions, reporter: Reporter | None = None) -> None:
    reporter = reporter or Reporter()
    binary, plan = prepare(options)
    host_services = load_host_services(options.host_services)
    workspace = Workspace(options.state_dir)
    workspace.create()
    lock = recovery.StateLock.acquire(workspace)
    loop = asyncio.get_running_loop()
    try:
        reaper.become_subreaper()
        # The one reader of every exit status (asyncio's child watcher is never used).
        reaper.children().install()
        runtime = RuncRuntime(binary, workspace, use_overlay=options.overlay)

        for item in await recovery.clean_leftovers(plan, runtime):
            reporter.notice(f"cleaned up after a previous executor: {item}")
        recovery.record_cgroup_parents(plan, workspace)

        configs = ConfigDirectory(
            options.config_dir, workspace.state_dir / "configs", on_problem=reporter.notice
        )
        supervisor = Supervisor(
            plan,
            runtime,
            SystemClock(),
            HostFacts.probe(),
            RunnerSettings(
                restart=RestartTiming(options.restart_interval, options.restart_backoff_max),
                stop_timeout=options.stop_timeout,
                check_interval=options.check_interval,
            ),
            log_dir=options.log_dir,
            console=make_console(options.console),
            host_services=host_services,
            has_configuration=configs.has,
            configuration_problem=configs.problem,
            prepare_spec=configs.apply,
            on_event=reporter.on_event,
        )
        stop_requested = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop_requested.set)
        # Services first (their lifecycles run at the next await), then what can wait.
        supervisor.start_all()
        control = ControlServer(workspace.state_dir / SOCKET_NAME, ControlHandler(supervisor))
        await control.start()
        watcher = asyncio.create_task(configs.watch(supervisor, stop_requested))
        reporter.notice(
            f"running {len(plan.services)} service(s) from {plan.path} "
            f"(state {workspace.state_dir}, logs {options.log_dir})"
        )
        await stop_requested.wait()

        reporter.notice("stopping all services")
        watcher.cancel()
        await control.close()
        await supervisor.shutdown()
        recovery.remove_created_cgroup_parents(plan, workspace)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        reporter.notice("all services stopped")
    finally:
        lock.release()
