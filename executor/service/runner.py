"""One service's lifecycle: the state machine of DESIGN §6 (Talos's states and events).

A lifecycle is one asyncio task::

    Waiting (conditions) -> Preparing -> Running -> exit
        -> Waiting (restart interval) -> Preparing -> ...   (the policy restarts it)
        -> Finished | Failed                                (the policy says it was the last run)

`stop()` may come at any point: while waiting it ends the lifecycle (Skipped
if the service never ran), while preparing it cancels the runtime call in
progress (killing it) and removes what was created, while running it is SIGTERM,
the grace period, then SIGKILL. Every runtime call is bounded by the runtime's
own timeout, so a hung runtime fails a start and never holds up a stop. The clock and the
container runtime are injected: the policy is tested without runc.

Each step has its module: the conditions waited for (``waiting``), the container
created ahead of its start (``container``), whether and when a service runs again
(``restart``), how a run ended (``outcome``), SIGTERM and SIGKILL (``stopping``),
the health check (``health``), what a stop cuts short (``tasks``); what every runner
is given (``context``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.compiler.format.servicepolicy import OnUnhealthy
from extsvc.executor.errors import LaunchError
from extsvc.executor.logs.logfile import run_ended, run_failed_to_start
from extsvc.executor.logs.servicelog import ServiceLog
from extsvc.executor.options import grace
from extsvc.executor.runtime.causes import runc_cause
from extsvc.executor.runtime.protocol import Container, ContainerRuntime
from extsvc.executor.service.clock import Moment
from extsvc.executor.service.conditions import Condition
from extsvc.executor.service.container import ContainerMaker
from extsvc.executor.service.context import RunnerContext
from extsvc.executor.service.health import Health, HealthMonitor, monitor_run
from extsvc.executor.service.outcome import RunOutcome, describe, exited_at_once
from extsvc.executor.service.restart import Restarts, Verdict
from extsvc.executor.service.states import TRANSITIONS, Event, EventHistory, ServiceState
from extsvc.executor.service.stopping import TaskStop
from extsvc.executor.service.tasks import STOPPED, Stopped, StopRequest
from extsvc.executor.service.waiting import Waiting


class ServiceRunner:
    def __init__(
        self,
        service: ServicePlan,
        log: ServiceLog,
        conditions: list[Condition],
        context: RunnerContext,
        dependency_gave_up: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.service = service
        self.clock = context.clock
        self.host = context.host
        self.log = log
        self.conditions = conditions
        self.board = context.board
        self.settings = context.settings
        self._on_event = context.on_event
        self._maker = ContainerMaker(
            context.runtime,
            context.host,
            log,
            context.prepare_spec or (lambda s: s.spec),
            self.note,
        )
        self.state = ServiceState.INITIALIZED
        self.events = EventHistory()
        self.last_change = Moment.now(self.clock)
        # The running task's container (None while waiting, even if one is created).
        self.container: Container | None = None
        # Attempts to run: every start, failed ones included (the log numbers them; `extsvc
        # service` shows runs - 1 as RESTARTS), and how many of them got a running task.
        self.runs = 0
        self.tasks_started = 0
        # Runs whose container never started (create or start failed).
        self.failed_starts = 0
        self.last_exit_code: int | None = None
        self.last_succeeded = False
        # A new one per lifecycle: it cuts short the lifecycle's waits and runtime calls.
        self._stop = StopRequest()
        self._lifecycle: asyncio.Task[None] | None = None
        # Why a dependency will never come up (an optional service failed), if one won't.
        self._dependency_gave_up = dependency_gave_up
        # Set when this service ended Skipped because of such a dependency: its own
        # dependents skip as well instead of waiting for it.
        self.gave_up_reason: str | None = None
        self.health_monitor: HealthMonitor | None = None
        self._unhealthy = asyncio.Event()
        # Host adaptations are the same each run: reported once per executor start.
        self.adaptations: list[str] = []
        # SIGTERM, the grace, SIGKILL; what `stop_status` tells an operator waiting for it.
        self._task_stop = TaskStop(
            self.id, self.clock, lambda message: self._transition(ServiceState.STOPPING, message)
        )
        # The log file failing (disk full) and recovering: events of the current state.
        log.on_problem = lambda message: self._transition(self.state, message)

    @property
    def id(self) -> str:
        return self.service.id

    @property
    def runtime(self) -> ContainerRuntime:
        """The container runtime: one for the container maker and the runner alike."""
        return self._maker.runtime

    # ----- what other services and the control socket see

    def is_up(self) -> bool:
        """Talos's "up": Running (and healthy, with a health check), or a one-shot that
        finished successfully."""
        if self.state is ServiceState.RUNNING:
            return self.service.policy.health is None or self.health is Health.OK
        return self.state is ServiceState.FINISHED and self.last_succeeded

    @property
    def health(self) -> Health:
        """The current run's health; "?" without a check or a running task."""
        running = self.state in (ServiceState.RUNNING, ServiceState.STOPPING)
        monitor = self.health_monitor
        return monitor.health if running and monitor is not None else Health.UNKNOWN

    @property
    def last_health_message(self) -> str:
        monitor = self.health_monitor
        return monitor.last_message if monitor is not None else ""

    @property
    def active(self) -> bool:
        return self._lifecycle is not None and not self._lifecycle.done()

    def start(self) -> bool:
        """Begin a lifecycle unless one is active; False when it already was."""
        if self.active:
            return False
        self._stop = StopRequest()
        self._lifecycle = asyncio.create_task(self._run_lifecycle(), name=f"lifecycle {self.id}")
        return True

    async def stop(self) -> None:
        """End the lifecycle: whatever the state, it is final when this returns."""
        self._stop.request(self._lifecycle)
        if self._lifecycle is not None:
            await asyncio.shield(self._lifecycle)

    def kill_now(self) -> None:
        """From now on a stop does not wait: SIGKILL at once (the grace cut short), then
        the same cleanup as ever (container deleted, mounts and cgroup removed)."""
        self._task_stop.kill_now()

    def stop_status(self) -> str:
        """What the stop of this service is waiting for, for an operator ("SIGTERM sent 2s
        ago, SIGKILL in 8s")."""
        signalling = self._task_stop.status()
        if signalling is not None:
            return signalling
        if self.state is ServiceState.PREPARING:
            return "its start is being cancelled"
        if self.state is ServiceState.STOPPING:
            return "its container, mounts and cgroup are being removed"
        return f"{self.state.value}, stopping"

    async def restart(self) -> None:
        await self.stop()
        self.start()

    def note(self, message: str) -> None:
        """An event that changes nothing in the state (a reload, for one)."""
        self._transition(self.state, message)

    # ----- the state machine

    def _transition(self, state: ServiceState, message: str, failure: bool = False) -> None:
        """Record an event; a change of state must be in TRANSITIONS (Supervisor's guard).

        ``failure`` marks a run's failure report, folded when it repeats (EventHistory)."""
        at = Moment.now(self.clock)
        if state is not self.state:
            allowed = TRANSITIONS[self.state]
            assert state in allowed, f"{self.id}: {self.state.value} -> {state.value} not allowed"
            self.state = state
            self.last_change = at
        event = self.events.append(Event(state, message, at, failure=failure))
        if self._on_event is not None:
            self._on_event(self.id, event)
        self.board.notify()

    async def _run_lifecycle(self) -> None:
        try:
            await self._lifecycle_steps()
        except Exception as error:
            # A bug (or an OS error in cleanup) must not leave the state "Running", nor
            # break `stop()` and the whole-plan shutdown that await this task.
            with contextlib.suppress(AssertionError):
                self._transition(ServiceState.FAILED, f"internal error: {error!r}")
        finally:
            # A container created ahead of a start that never came.
            await self._maker.discard_ahead(self.service)

    async def _lifecycle_steps(self) -> None:
        self._maker.ahead_failed = False
        self.gave_up_reason = None
        waiting = Waiting(
            self.conditions,
            self.board,
            self.clock,
            self.settings.check_interval,
            self.service.policy.start_timeout,
            say=lambda message: self._transition(ServiceState.WAITING, message),
            dependency_gave_up=self._dependency_gave_up,
            create_ahead=lambda: self._maker.create_ahead(self.service),
        )
        ended = await waiting.until_met(self._stop)
        if ended is not None:
            # Waiting -> Skipped|Failed: stopped, timed out, or a dependency gave up.
            self.gave_up_reason = ended.gave_up
            await self._maker.discard_ahead(self.service)
            self._transition(ended.state, ended.message)
            return
        # Per lifecycle: `service ID start` begins a new one with a clean record.
        restarts = Restarts(
            self.service.restart, self.service.policy.restart_limit, self.settings.restart
        )
        while True:
            if self._stop.is_set():
                # Waiting -> Finished: stopped before the next run began.
                self._transition(ServiceState.FINISHED, "Service stopped")
                return
            outcome = await self._run_once()
            if outcome.stopped:
                # Stopping -> Finished: the stop we asked for completed.
                self._transition(ServiceState.FINISHED, "Service stopped")
                return
            report = describe(outcome, self.service, self.log.last_line, self.last_health_message)
            decision = restarts.after(outcome, self.clock.monotonic())
            if decision.verdict is Verdict.LAST_RUN:
                # Running/Preparing -> Finished|Failed: the policy says this was the last run.
                if outcome.succeeded:
                    self._transition(ServiceState.FINISHED, "Service finished successfully")
                else:
                    self._transition(ServiceState.FAILED, report, failure=True)
                return
            if decision.verdict is Verdict.LIMIT_REACHED:
                # -> Failed: too many failures in the window; only `start` tries again.
                self._transition(ServiceState.FAILED, f"{decision.message}: {report}")
                return
            delay = decision.delay
            # Running/Preparing -> Waiting: the policy restarts it after the interval.
            # A task that exits 0 at once loops as surely as a failing one: its
            # repeats fold the same way.
            forked = exited_at_once(outcome, self.service.restart)
            self._transition(
                ServiceState.WAITING,
                f"{report}; {decision.message}",
                failure=not outcome.succeeded or forked,
            )
            began = self.clock.monotonic()
            # A task that could not even start would fail to be created ahead as well.
            self._maker.ahead_failed = outcome.error is not None
            created = await self._stop.interruptible(self._maker.create_ahead(self.service))
            remaining = max(0.0, delay - (self.clock.monotonic() - began))
            if created is STOPPED or (
                await self._stop.until(self.clock.sleep(remaining)) is STOPPED
            ):
                # Waiting -> Finished: stopped between two runs.
                await self._maker.discard_ahead(self.service)
                self._transition(ServiceState.FINISHED, "Service stopped")
                return

    async def _run_once(self) -> RunOutcome:
        # -> Preparing: conditions are met (or the restart interval is over).
        self._transition(ServiceState.PREPARING, "Running pre state")
        # This attempt's number: taken once it starts or fails (a stop first takes none).
        run = self.runs + 1
        try:
            spec, adaptations = self._maker.spec(self.service)
        except LaunchError as error:
            await self._maker.discard_ahead(self.service)
            return self._failed_start(run, error)
        # The spec may have changed since the container was created (a new configuration).
        await self._maker.discard_stale(self.service, spec)
        for message in adaptations:
            # The same every run: an event once per executor start, then in `service ID`.
            if message not in self.adaptations:
                self.adaptations.append(message)
                self._transition(ServiceState.PREPARING, message)
        self._transition(ServiceState.PREPARING, "Creating service runner")
        container = self._maker.take_ahead()
        if container is None:
            # A stop while the runtime works cancels its call (which kills it): a hung
            # runtime never holds up a stop for longer than its cleanup.
            try:
                created = await self._stop.interruptible(self._maker.create(self.service, spec))
            except LaunchError as error:
                return self._failed_start(run, error)
            if isinstance(created, Stopped):
                await self._maker.cleanup(self.service)
                return RunOutcome(stopped=True)
            container = created
        if self._stop.is_set():
            # A stop that came as the create ended (3.11's wait_for may return the result
            # and drop the cancellation): the container is removed, never started.
            await self._maker.cleanup(self.service)
            return RunOutcome(stopped=True)
        try:
            # Before the start: the container may write before "Started task" is known.
            self.log.begin_run(run, container.pid)
            try:
                if await self._stop.interruptible(self.runtime.start(container)) is STOPPED:
                    return RunOutcome(stopped=True)
            except LaunchError as error:
                return self._failed_start(run, error)
            self.container = container
            self.runs = run
            self.tasks_started += 1
            # Preparing -> Running: the task exists and runs.
            self._transition(
                ServiceState.RUNNING,
                f"Started task {self.id} (PID {container.pid}) for container {self.id}",
            )
            started_at = self.clock.monotonic()
            self._start_health_checks(container, spec)
            result = await self._stop.until(container.wait(), also=self._unhealthy)
            ran_for = self.clock.monotonic() - started_at
            await self._stop_health_checks()
            ended_by_us = isinstance(result, Stopped)
            stopped = ended_by_us and self._stop.is_set()
            unhealthy = ended_by_us and not stopped
            exit_code = (
                await self._task_stop.terminate(container, self.stop_timeout)
                if isinstance(result, Stopped)
                else result
            )
            self.last_exit_code = exit_code
            self.last_succeeded = exit_code == 0 and not ended_by_us
            self.log.mark(run_ended(exit_code, stopped))
            return RunOutcome(
                exit_code=exit_code, stopped=stopped, unhealthy=unhealthy, ran_for=ran_for
            )
        finally:
            await self._stop_health_checks()
            self.container = None
            await self._maker.cleanup(self.service)

    def _start_health_checks(self, container: Container, spec: dict[str, Any]) -> None:
        self._unhealthy = asyncio.Event()
        check = self.service.policy.health
        if check is None:
            return
        self.health_monitor, adaptation = monitor_run(
            check, container, spec, self.host, self.runtime, self.clock, self._health_changed
        )
        if adaptation is not None and adaptation not in self.adaptations:
            # Once per executor start, as the service's own adaptations.
            self.adaptations.append(adaptation)
            self._transition(ServiceState.RUNNING, adaptation)

    async def _stop_health_checks(self) -> None:
        if self.health_monitor is not None:
            await self.health_monitor.stop()

    def _health_changed(self, monitor: HealthMonitor) -> None:
        # Running -> Running: health is news for `extsvc service` and for dependents
        # waiting for "healthy" (the transition wakes them).
        if monitor.health is Health.OK:
            self._transition(ServiceState.RUNNING, "Health check successful")
            return
        self._transition(ServiceState.RUNNING, f"Health check failed: {monitor.last_message}")
        if monitor.check.on_unhealthy is OnUnhealthy.RESTART:
            self._unhealthy.set()

    def _failed_start(self, run: int, error: LaunchError) -> RunOutcome:
        self.runs = run
        self.failed_starts += 1
        self.log.mark(run_failed_to_start(self.id, run, runc_cause(str(error))))
        return RunOutcome(error=str(error))

    @property
    def stop_timeout(self) -> float:
        """SIGTERM -> SIGKILL grace: the service's own (x-extsvc stopTimeout) or the executor's."""
        return grace(self.service.policy, self.settings.stop_timeout)
