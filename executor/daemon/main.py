"""`extsvc run`: check the host, load the plan, clean up, supervise, stop cleanly on a signal.

Reads like the list of its stages (STYLE: a main that reads like the pipeline):
``run_daemon`` is ``Daemon.start``, ``serve``, ``stop``, then ``release``.

Signals, as a daemon (executor.daemon.signals): SIGTERM and SIGINT stop every service
(dependents first, the configured grace) and exit 0; a second one during the stop says
what it waits for, a third kills at once (and still cleans up); SIGHUP reloads the
plan; SIGUSR1 prints every task and what it waits for. The CLI blocks them at its first
instruction and they are unblocked only once the loop's handlers are in place, so none
can kill the executor half-started (a pending one is delivered then). Containers run in
their own session (executor.runtime.runc), so a terminal's Ctrl-C reaches the executor
alone, which stops them gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.compiler.format.plan import Plan
from extsvc.executor.daemon import startup
from extsvc.executor.daemon.client import RUN_INFO
from extsvc.executor.daemon.loopstats import LoopStats
from extsvc.executor.daemon.notify import Notifier
from extsvc.executor.daemon.signals import Signals, stop_signal_reply
from extsvc.executor.daemon.startup import Startup
from extsvc.executor.daemon.telemetry import Metrics
from extsvc.executor.errors import PlanError
from extsvc.executor.logs.journal import Journal, is_journal_stream
from extsvc.executor.logs.servicelog import make_console
from extsvc.executor.options import ConsoleKind, DaemonOptions, LogTarget
from extsvc.executor.process import reaper
from extsvc.executor.runtime import recovery
from extsvc.executor.runtime.placement import run_by_systemd
from extsvc.executor.runtime.runc import RuncRuntime
from extsvc.executor.runtime.workspace import Workspace
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import Event
from extsvc.executor.supervise.supervisor import Supervisor, SupervisorSettings

# After the shutdown: how long the tasks left may take to end once cancelled.
LEFTOVER_TASK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reporter:
    """How the daemon talks to whoever started it (the CLI prints; tests collect)."""

    on_event: Callable[[str, Event], None] | None = None
    on_notice: Callable[[str], None] | None = None

    def notice(self, message: str) -> None:
        if self.on_notice is not None:
            self.on_notice(message)


def write_run_info(
    workspace: Workspace, options: DaemonOptions, plan: Plan, target: LogTarget
) -> None:
    """Where this daemon keeps its logs, for `extsvc logs` (kept after exit: logs outlive us)."""
    info = {
        "pid": os.getpid(),
        "plan": str(plan.path),
        "logDir": str(options.log_dir.resolve()),
        "logTarget": target.value,
    }
    temporary = workspace.state_dir / (RUN_INFO + ".tmp")
    temporary.write_text(json.dumps(info) + "\n")
    temporary.rename(workspace.state_dir / RUN_INFO)


async def run_daemon(
    options: DaemonOptions, reporter: Reporter | None = None, begun: Startup | None = None
) -> None:
    """Run until SIGTERM/SIGINT. ``begun``: what the CLI's start-up already did
    (executor.daemon.startup, before asyncio was imported); done here when not given."""
    reporter = reporter or Reporter()
    if begun is None:
        begun = startup.begin(options, reporter.notice)
    daemon = Daemon(options, begun, reporter)
    try:
        await daemon.start()
        await daemon.serve()
        await daemon.stop()
    finally:
        await daemon.release()


class Daemon:
    """What the loop owns from the start of the services to their stop, in three steps:
    ``start`` (recovery, sinks, supervisor, services, then control, metrics, watches),
    ``serve`` (READY=1, until a stop signal), ``stop`` (every service, dependents first,
    within the shutdown bound); ``release`` whatever happened."""

    def __init__(self, options: DaemonOptions, begun: Startup, reporter: Reporter) -> None:
        self.options = options
        self.begun = begun
        self.reporter = reporter
        loop = asyncio.get_running_loop()
        # How late the loop runs, for `extsvc service --debug` (no timer: idle stays idle).
        self.loop_stats = LoopStats.install(loop)
        # SIGHUP before the services started is ignored (there is nothing to reload yet).
        self._accept_reloads = False
        self.signals = Signals(loop, self._reload_on_signal, reporter.notice)
        self.notifier = Notifier(begun.manager.notify_socket)
        self.runtime: RuncRuntime | None = None
        self._reloading = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        options, begun = self.options, self.begun
        # The one reader of every exit status (asyncio's child watcher is never used).
        reaper.children().install()
        # At once (no await before): the creates begun at start-up are owned from here.
        self.runtime = RuncRuntime(
            begun.binary,
            begun.workspace,
            use_overlay=options.overlay,
            command_timeout=options.runtime_timeout,
            head_starts=begun.head_starts,
            placement=begun.host.cgroups,
        )
        target = log_target(options)
        write_run_info(begun.workspace, options, begun.plan, target)
        if begun.leftovers:
            for item in await recovery.clean_leftovers(
                begun.plan, self.runtime, begun.host.cgroups
            ):
                self.reporter.notice(f"cleaned up after a previous executor: {item}")
        recovery.record_cgroup_parents(begun.plan, begun.workspace, begun.host.cgroups)
        self.metrics = Metrics(options, self.reporter.notice)
        self.loop_stats.on_timer_late = self.metrics.note_loop_lag
        self._open_sinks(target)
        self.supervisor = self._supervisor(target)
        self.metrics.serve(self.supervisor)
        # Services first, then what can wait: one turn of the loop takes each lifecycle to
        # its first wait (a create, usually begun at start-up), and the control server's
        # modules are imported while runc works rather than before.
        if not self.signals.stop.is_set():
            self.supervisor.start_all()
            self._accept_reloads = True
            await asyncio.sleep(0)
        from extsvc.executor.daemon.control import SOCKET_NAME, ControlHandler, ControlServer

        self.control = ControlServer(
            begun.workspace.state_dir / SOCKET_NAME,
            ControlHandler(
                self.supervisor,
                reload=self.reload,
                metrics=self.metrics.source,
                loop_stats=self.loop_stats,
            ),
        )
        await self.control.start()
        await self.metrics.listen()
        self._watcher = asyncio.create_task(begun.configs.watch(self.supervisor, self.signals.stop))
        self._watchdog = asyncio.create_task(self.notifier.watchdog(begun.manager.watchdog_usec))
        self.reporter.notice(
            f"running {len(begun.plan.services)} service(s) from {begun.plan.path} "
            f"(state {begun.workspace.state_dir}, logs {options.log_dir})"
        )

    def _open_sinks(self, target: LogTarget) -> None:
        """The journal and the console every service log shares. A console nobody reads,
        or a journald that is stopped or slow, drops lines (counted, one notice,
        extsvc_sink_dropped_lines_total), never blocks."""
        self.journal: Journal | None = None
        console_kind = self.options.console
        if target in (LogTarget.JOURNALD, LogTarget.BOTH):
            self.journal = Journal(
                self.options.journal_socket, on_dropped=self.metrics.observing_notice
            )
            self.metrics.sinks["journald"] = self.journal
            if console_kind is ConsoleKind.STDOUT and is_journal_stream(1, os.environ):
                # The journal has each line already, with its fields: not twice.
                console_kind = ConsoleKind.NONE
                self.reporter.notice(
                    "logToConsole lines are not copied to stdout: it is the journal, "
                    "which has every service's lines already"
                )
        self.console = make_console(console_kind, on_dropped=self.metrics.observing_notice)
        self.metrics.sinks[console_kind.value] = self.console

    def _supervisor(self, target: LogTarget) -> Supervisor:
        options, begun = self.options, self.begun
        assert self.runtime is not None
        settings = SupervisorSettings(
            begun.host,
            RunnerSettings(
                restart=RestartTiming(options.restart_interval, options.restart_backoff_max),
                stop_timeout=options.stop_timeout,
                check_interval=options.check_interval,
            ),
            log_dir=options.log_dir,
            log_files=target is not LogTarget.JOURNALD,
            log_rotation=options.log_rotation,
            host_services=begun.host_services,
        )
        return Supervisor(
            begun.plan,
            self.runtime,
            SystemClock(),
            settings,
            console=self.console,
            journal=self.journal,
            configuration=begun.configs,
            on_event=self.metrics.observing(self.reporter.on_event),
        )

    async def serve(self) -> None:
        """READY=1 once every service began its first attempt (plan loaded, recovery
        done); then until a stop signal."""
        began = asyncio.ensure_future(self.supervisor.wait_all_began())
        stopping = asyncio.ensure_future(self.signals.stop.wait())
        await asyncio.wait({began, stopping}, return_when=asyncio.FIRST_COMPLETED)
        began.cancel()
        if not self.signals.stop.is_set():
            self.notifier.ready(self._running_status())
        await stopping

    async def stop(self) -> None:
        """Every service, dependents first, within the shutdown bound; then the outputs."""
        supervisor, signals_ = self.supervisor, self.signals
        self._accept_reloads = False
        self.notifier.stopping()
        self.reporter.notice("stopping all services (Ctrl-C again: what the stop waits for)")
        bound = self.options.shutdown_bound(supervisor.plan)
        ends_at = signals_.loop.time() + bound
        signals_.on_repeat = lambda count: stop_signal_reply(
            count, supervisor, ends_at - signals_.loop.time(), self.reporter.notice
        )
        self._watcher.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await asyncio.wait_for(supervisor.shutdown(), bound)
        except TimeoutError:
            # Only a runtime that hangs even its cleanup gets here: no process of ours
            # stays; its state, mounts and cgroups are removed by the next start.
            killed = recovery.kill_service_processes(supervisor.plan, self.begun.host.cgroups)
            self.reporter.notice(
                f"shutdown did not finish within {format_duration(bound)} "
                f"(the runtime does not answer): killed {killed} container process(es); "
                "the next `extsvc run` removes what is left"
            )
        # After the shutdown: `logs -f` clients get the last lines and the reason it ended.
        await self.control.close()
        await self.metrics.close()
        self.console.close()
        if self.journal is not None:
            self.journal.close()
        self._watchdog.cancel()
        recovery.remove_created_cgroup_parents(
            supervisor.plan, self.begun.workspace, self.begun.host.cgroups
        )
        self.reporter.notice("all services stopped")

    async def release(self) -> None:
        """What is held whether or not the daemon got to run: the head starts, the lock,
        the signal handlers, the notify socket."""
        try:
            if self.runtime is not None:
                # Creates begun at start-up that no service took (a stop came first).
                await self.runtime.discard_head_starts()
            self.begun.lock.release()
        finally:
            self.signals.remove()
            self.notifier.close()

    def _running_status(self) -> str:
        plan = self.supervisor.plan
        return f"running {len(plan.services)} service(s) from {plan.path}"

    async def reload(self) -> dict[str, Any]:
        """Re-read OUT; a plan that fails validation is refused, nothing is touched."""
        supervisor, metrics = self.supervisor, self.metrics
        if supervisor.stopping:
            raise PlanError("the executor is stopping: not reloading")
        async with self._reloading:
            self.notifier.reloading()
            metrics.counters.reloads += 1
            try:
                try:
                    new_plan = startup.load(self.options)
                except PlanError as error:
                    metrics.counters.reload_failures += 1
                    metrics.changed()
                    raise PlanError(
                        f"reload refused, the running services are kept:\n{error}"
                    ) from None
                report = await supervisor.reload(new_plan)
                metrics.counters.plan_digest = supervisor.plan_digest or ""
                metrics.changed()
            finally:
                self.notifier.ready(self._running_status())
        self.reporter.notice(report.summary())
        return {"message": report.summary(), **report.to_json()}

    def _reload_on_signal(self) -> None:
        """SIGHUP: a reload, in a task of its own (the stop waits for it)."""
        if not self._accept_reloads:
            return

        async def reload() -> None:
            self.reporter.notice("SIGHUP: reloading the plan")
            try:
                await self.reload()
            except PlanError as error:
                self.reporter.notice(str(error))

        task = asyncio.create_task(reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def end_leftover_tasks(timeout: float = LEFTOVER_TASK_TIMEOUT) -> int:
    """Cancel every other task still running and wait at most ``timeout`` for them;
    how many did not end (a task that drops its cancellation would hold up the exit)."""
    leftover = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftover:
        task.cancel()
    if not leftover:
        return 0
    _, pending = await asyncio.wait(leftover, timeout=timeout)
    return len(pending)


def log_target(options: DaemonOptions, environ: Mapping[str, str] = os.environ) -> LogTarget:
    """``--log-target``, with ``auto`` decided: both the files and journald when a systemd
    unit runs the executor and journald's socket is there, else the files."""
    if options.log_target is not LogTarget.AUTO:
        return options.log_target
    if run_by_systemd(environ) and options.journal_socket.is_socket():
        return LogTarget.BOTH
    return LogTarget.FILES
