"""`extsvc run`: check the host, load the plan, clean up, supervise, stop cleanly on a signal.

Reads like the list of its stages (STYLE: a main that reads like the pipeline).

Signals, as a daemon: SIGTERM and SIGINT stop every service (dependents first,
the configured grace) and exit 0; a second one during the stop says what it waits
for, a third kills at once (and still cleans up); SIGHUP reloads the plan; SIGUSR1 prints every
task and what it waits for. The CLI blocks them at its first instruction and they
are unblocked only once the loop's handlers are in place, so none can kill the
executor half-started (a pending one is delivered then). Containers run in their
own session (executor.runtime.runc), so a terminal's Ctrl-C reaches the executor alone,
which stops them gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from extsvc.compiler.format.plan import Plan
from extsvc.executor.daemon import signals, startup
from extsvc.executor.daemon.client import RUN_INFO
from extsvc.executor.daemon.loopstats import LoopStats
from extsvc.executor.daemon.notify import Notifier
from extsvc.executor.daemon.startup import Startup
from extsvc.executor.durations import format_duration
from extsvc.executor.errors import PlanError
from extsvc.executor.logs.journal import Journal, is_journal_stream
from extsvc.executor.logs.servicelog import make_console
from extsvc.executor.metrics.families import SinkDrops
from extsvc.executor.metrics.serve import MetricsFile, MetricsHttpServer, MetricsSource
from extsvc.executor.options import ConsoleKind, DaemonOptions, LogTarget
from extsvc.executor.process import reaper
from extsvc.executor.runtime import recovery
from extsvc.executor.runtime.placement import run_by_systemd
from extsvc.executor.runtime.runc import RuncRuntime
from extsvc.executor.runtime.workspace import Workspace
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.runner import RestartTiming, RunnerSettings
from extsvc.executor.service.states import Event
from extsvc.executor.supervise.supervisor import Supervisor

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


class Signals:
    """The loop's handlers for the daemon's signals; unblocks them once installed.

    SIGTERM and SIGINT count together, as docker's daemon counts them: the first
    stops every service gracefully (``stop``), the second makes ``on_repeat`` say
    what the stop waits for, the third and any later one ask ``on_repeat`` to kill
    at once (a terminal's Ctrl-C pressed again and again).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_reload: Callable[[], None],
        on_dump: Callable[[str], None],
    ) -> None:
        self.loop = loop
        self.stop = asyncio.Event()
        self.count = 0
        # Told the count of each stop signal after the first (set once there is something
        # to report on or to kill).
        self.on_repeat: Callable[[int], None] = lambda count: None
        for signum in signals.STOP_SIGNALS:
            loop.add_signal_handler(signum, self._stop_signal)
        loop.add_signal_handler(signals.RELOAD_SIGNAL, on_reload)
        loop.add_signal_handler(signals.DUMP_SIGNAL, lambda: on_dump(task_stacks()))
        signals.unblock()

    def _stop_signal(self) -> None:
        self.count += 1
        if self.count == 1:
            self.stop.set()
        else:
            self.on_repeat(self.count)

    def remove(self) -> None:
        for signum in signals.HANDLED_SIGNALS:
            self.loop.remove_signal_handler(signum)


def stop_signal_reply(
    count: int, supervisor: Supervisor, ends_in: float, notice: Callable[[str], None]
) -> None:
    """The second stop signal says what the stop waits for; the third kills at once."""
    waiting = supervisor.stop_status()
    limit = f"at most {format_duration(max(ends_in, 0.0))} more"
    if not waiting:
        notice(f"stopping: every service has stopped, finishing ({limit})")
        return
    if count >= 3 and not supervisor.killing:
        supervisor.kill_now()
        notice(
            f"killing {len(waiting)} service(s) at once (SIGKILL), then removing their "
            "containers, mounts and cgroups"
        )
        return
    notice(f"stopping: waiting for {len(waiting)} service(s), {limit}:")
    for line in waiting:
        notice(f"  {line}")
    if count < 3:
        notice("press Ctrl-C (or send SIGINT/SIGTERM) once more to kill them at once")


async def run_daemon(
    options: DaemonOptions, reporter: Reporter | None = None, begun: Startup | None = None
) -> None:
    """Run until SIGTERM/SIGINT. ``begun``: what the CLI's start-up already did
    (executor.daemon.startup, before asyncio was imported); done here when not given."""
    reporter = reporter or Reporter()
    if begun is None:
        begun = startup.begin(options, reporter.notice)
    loop = asyncio.get_running_loop()
    # How late the loop runs, for `extsvc service --debug` (no timer: idle stays idle).
    loop_stats = LoopStats.install(loop)
    reload_requests: list[Callable[[], None]] = []

    def on_reload() -> None:
        for request in reload_requests:
            request()

    handlers = Signals(loop, on_reload, reporter.notice)
    notifier = Notifier(begun.manager.notify_socket)
    try:
        await _run(options, begun, reporter, handlers, notifier, reload_requests, loop_stats)
    finally:
        handlers.remove()
        notifier.close()


async def _run(
    options: DaemonOptions,
    begun: Startup,
    reporter: Reporter,
    handlers: Signals,
    notifier: Notifier,
    reload_requests: list[Callable[[], None]],
    loop_stats: LoopStats,
) -> None:
    plan, workspace, configs = begun.plan, begun.workspace, begun.configs
    runtime: RuncRuntime | None = None
    try:
        # The one reader of every exit status (asyncio's child watcher is never used).
        reaper.children().install()
        # At once (no await before): the creates begun at start-up are owned from here.
        runtime = RuncRuntime(
            begun.binary,
            workspace,
            use_overlay=options.overlay,
            command_timeout=options.runtime_timeout,
            head_starts=begun.head_starts,
            placement=begun.host.cgroups,
        )
        target = log_target(options)
        write_run_info(workspace, options, plan, target)

        if begun.leftovers:
            for item in await recovery.clean_leftovers(plan, runtime, begun.host.cgroups):
                reporter.notice(f"cleaned up after a previous executor: {item}")
        recovery.record_cgroup_parents(plan, workspace, begun.host.cgroups)

        metrics = Metrics(options, plan, reporter)
        # A console nobody reads, or a journald that is stopped or slow, drops lines
        # (counted, one notice, extsvc_sink_dropped_lines_total), never blocks.
        journal = None
        console_kind = options.console
        if target in (LogTarget.JOURNALD, LogTarget.BOTH):
            journal = Journal(options.journal_socket, on_dropped=metrics.observing_notice)
            metrics.sinks["journald"] = journal
            if console_kind is ConsoleKind.STDOUT and is_journal_stream(1, os.environ):
                # The journal has each line already, with its fields: not twice.
                console_kind = ConsoleKind.NONE
                reporter.notice(
                    "logToConsole lines are not copied to stdout: it is the journal, "
                    "which has every service's lines already"
                )
        console = make_console(console_kind, on_dropped=metrics.observing_notice)
        metrics.sinks[console_kind.value] = console
        counters = metrics.counters

        def note_loop_lag(late: float) -> None:
            # extsvc_event_loop_lag_seconds: the lateness of the last timer the loop ran.
            counters.loop_lag = late

        loop_stats.on_timer_late = note_loop_lag
        supervisor = Supervisor(
            plan,
            runtime,
            SystemClock(),
            begun.host,
            RunnerSettings(
                restart=RestartTiming(options.restart_interval, options.restart_backoff_max),
                stop_timeout=options.stop_timeout,
                check_interval=options.check_interval,
            ),
            log_dir=options.log_dir,
            console=console,
            journal=journal,
            log_files=target is not LogTarget.JOURNALD,
            host_services=begun.host_services,
            has_configuration=configs.has,
            configuration_problem=configs.problem,
            configuration_watched=True,  # configs.watch wakes the waiting services
            prepare_spec=configs.apply,
            on_event=metrics.observing(reporter.on_event),
            log_rotation=options.log_rotation,
        )
        metrics.serve(supervisor)
        reloading = asyncio.Lock()

        def running_status() -> str:
            return f"running {len(supervisor.plan.services)} service(s) from {supervisor.plan.path}"

        async def reload() -> dict[str, Any]:
            """Re-read OUT; a plan that fails validation is refused, nothing is touched."""
            if supervisor.stopping:
                raise PlanError("the executor is stopping: not reloading")
            async with reloading:
                notifier.reloading()
                metrics.counters.reloads += 1
                try:
                    try:
                        new_plan = startup.load(options)
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
                    notifier.ready(running_status())
            reporter.notice(report.summary())
            return {"message": report.summary(), **report.to_json()}

        async def reload_on_signal() -> None:
            reporter.notice("SIGHUP: reloading the plan")
            try:
                await reload()
            except PlanError as error:
                reporter.notice(str(error))

        background: set[asyncio.Task[None]] = set()

        def request_reload() -> None:
            task = asyncio.create_task(reload_on_signal())
            background.add(task)
            task.add_done_callback(background.discard)

        # Services first, then what can wait: one turn of the loop takes each lifecycle to
        # its first wait (a create, usually begun at start-up), and the control server's
        # modules are imported while runc works rather than before.
        if not handlers.stop.is_set():
            supervisor.start_all()
            reload_requests.append(request_reload)
            await asyncio.sleep(0)
        from extsvc.executor.daemon.control import SOCKET_NAME, ControlHandler, ControlServer

        control = ControlServer(
            workspace.state_dir / SOCKET_NAME,
            ControlHandler(
                supervisor, reload=reload, metrics=metrics.source, loop_stats=loop_stats
            ),
        )
        await control.start()
        await metrics.listen()
        watcher = asyncio.create_task(configs.watch(supervisor, handlers.stop))
        watchdog = asyncio.create_task(notifier.watchdog(begun.manager.watchdog_usec))
        reporter.notice(
            f"running {len(plan.services)} service(s) from {plan.path} "
            f"(state {workspace.state_dir}, logs {options.log_dir})"
        )
        # READY=1: plan loaded, recovery done, every service began its first attempt.
        began = asyncio.ensure_future(supervisor.wait_all_began())
        stopping = asyncio.ensure_future(handlers.stop.wait())
        await asyncio.wait({began, stopping}, return_when=asyncio.FIRST_COMPLETED)
        began.cancel()
        if not handlers.stop.is_set():
            notifier.ready(running_status())
        await stopping

        reload_requests.clear()
        notifier.stopping()
        reporter.notice("stopping all services (Ctrl-C again: what the stop waits for)")
        bound = options.shutdown_bound(supervisor.plan)
        ends_at = handlers.loop.time() + bound
        handlers.on_repeat = lambda count: stop_signal_reply(
            count, supervisor, ends_at - handlers.loop.time(), reporter.notice
        )
        watcher.cancel()
        for task in list(background):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await asyncio.wait_for(supervisor.shutdown(), bound)
        except TimeoutError:
            # Only a runtime that hangs even its cleanup gets here: no process of ours
            # stays; its state, mounts and cgroups are removed by the next start.
            killed = recovery.kill_service_processes(supervisor.plan, begun.host.cgroups)
            reporter.notice(
                f"shutdown did not finish within {format_duration(bound)} "
                f"(the runtime does not answer): killed {killed} container process(es); "
                "the next `extsvc run` removes what is left"
            )
        # After the shutdown: `logs -f` clients get the last lines and the reason it ended.
        await control.close()
        await metrics.close()
        console.close()
        if journal is not None:
            journal.close()
        watchdog.cancel()
        recovery.remove_created_cgroup_parents(supervisor.plan, workspace, begun.host.cgroups)
        reporter.notice("all services stopped")
    finally:
        if runtime is not None:
            # Creates begun at start-up that no service took (a stop came first).
            await runtime.discard_head_starts()
        begun.lock.release()


class DropCounting(Protocol):
    @property
    def dropped_total(self) -> int: ...


class Metrics:
    """The daemon's metrics and where they go (executor.metrics.serve): the control
    socket always, the file and the HTTP endpoint when asked for."""

    def __init__(self, options: DaemonOptions, plan: Plan, reporter: Reporter) -> None:
        from extsvc import __version__
        from extsvc.executor.metrics.families import ExecutorCounters

        self._options = options
        self._reporter = reporter
        self.counters = ExecutorCounters(__version__, time.time())
        self.source: MetricsSource | None = None
        self._file: MetricsFile | None = None
        self._http: MetricsHttpServer | None = None
        # The shared sinks whose drops are counted, by name (console: stdout or kmsg).
        self.sinks: dict[str, DropCounting] = {}

    def serve(self, supervisor: Supervisor) -> None:
        self.counters.plan_digest = supervisor.plan_digest or ""
        self.source = MetricsSource(
            self.counters,
            lambda: list(supervisor.runners.values()),
            lambda: [SinkDrops(name, sink.dropped_total) for name, sink in self.sinks.items()],
        )
        if self._options.metrics_file is not None:
            self._file = MetricsFile(self._options.metrics_file, self.source, self._reporter.notice)
            self._file.write()

    def observing(
        self, on_event: Callable[[str, Event], None] | None
    ) -> Callable[[str, Event], None]:
        def observe(service_id: str, event: Event) -> None:
            if on_event is not None:
                on_event(service_id, event)
            self.changed()

        return observe

    def observing_notice(self, message: str) -> None:
        """A sink's drop report: said, and its count changed (the file shows it)."""
        self._reporter.notice(message)
        self.changed()

    def changed(self) -> None:
        if self._file is not None:
            self._file.changed()

    async def listen(self) -> None:
        if self._options.metrics_listen is None or self.source is None:
            return
        host, port = self._options.metrics_listen
        server = MetricsHttpServer(host, port, self.source)
        try:
            await server.start()
        except OSError as error:
            # Monitoring must not hold up the boot: the services run, and this is said.
            self._reporter.notice(
                f"cannot serve metrics on {host}:{port}: {error.strerror}; not serving them"
            )
            return
        self._http = server
        self._reporter.notice(f"serving metrics on http://{host}:{server.bound_port}/metrics")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._file is not None:
            self._file.close()


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


def task_stacks() -> str:
    """Every task of the running loop and where it waits (SIGUSR1): the chain of
    coroutines it is suspended in, outermost first, then what the innermost awaits
    (Task.print_stack shows a suspended coroutine's outermost frame only)."""
    tasks = sorted(asyncio.all_tasks(), key=lambda task: task.get_name())
    lines = [f"SIGUSR1: {len(tasks)} task(s)"]
    for task in tasks:
        lines.append(f"task {task.get_name()!r}:")
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:  # a future, or a coroutine object without a frame
                lines.append(f"    awaiting {awaited!r}"[:300])
                break
            code = frame.f_code
            lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)


def log_target(options: DaemonOptions, environ: Mapping[str, str] = os.environ) -> LogTarget:
    """``--log-target``, with ``auto`` decided: both the files and journald when a systemd
    unit runs the executor and journald's socket is there, else the files."""
    if options.log_target is not LogTarget.AUTO:
        return options.log_target
    if run_by_systemd(environ) and options.journal_socket.is_socket():
        return LogTarget.BOTH
    return LogTarget.FILES
