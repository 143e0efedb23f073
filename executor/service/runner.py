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

A container is created while its service still waits, as soon as its spec is
final (no unmet condition that changes the spec: configuration document,
environment file), and during the interval before a restart: once the
conditions are met only `start` remains. If the spec differs at that point (a
new configuration document) the created container is deleted and created
again. Until then the service holds only a stopped init.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from extsvc.compiler.format.plan import OnUnhealthy, RestartPolicy, ServicePlan
from extsvc.executor.durations import format_duration
from extsvc.executor.errors import LaunchError
from extsvc.executor.logs.logfile import run_ended, run_failed_to_start
from extsvc.executor.logs.servicelog import ServiceLog
from extsvc.executor.options import grace
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from extsvc.executor.runtime.bundles import spec_key
from extsvc.executor.runtime.causes import runc_cause
from extsvc.executor.runtime.protocol import Container, ContainerRuntime, ExecResult
from extsvc.executor.service.clock import Clock, Moment
from extsvc.executor.service.conditions import Condition, HostServiceUp
from extsvc.executor.service.health import Health, HealthMonitor, check_process
from extsvc.executor.service.restart import RestartBudget, short_duration
from extsvc.executor.service.states import TRANSITIONS, Event, EventHistory, ServiceState

T = TypeVar("T")

# Talos re-checks its conditions once a second.
DEFAULT_CHECK_INTERVAL = 1.0
# A `restart: always` task that exits 0 sooner than this after its start did not run
# as a service: its entrypoint is almost surely a daemon that forked into the
# background (the init's exit ends the container, the daemon with it). A service that
# means to stay up and really ran ends later than this; a one-shot says `never` or
# `untilSuccess`, where an early exit 0 is what it should do.
EXITED_AT_ONCE = 1.0


@dataclass(frozen=True)
class RestartTiming:
    """Talos waits a fixed interval (5 s) between runs; ``max_interval`` turns on a
    capped exponential backoff for consecutive failures."""

    interval: float = 5.0
    max_interval: float | None = None

    def delay(self, consecutive_failures: int) -> float:
        if self.max_interval is None or consecutive_failures <= 1:
            return self.interval
        backoff: float = self.interval * 2 ** (consecutive_failures - 1)
        return min(backoff, self.max_interval)


@dataclass(frozen=True)
class RunnerSettings:
    restart: RestartTiming = RestartTiming()
    stop_timeout: float = 10.0
    check_interval: float = DEFAULT_CHECK_INTERVAL


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended: an exit code, or a start that failed, or a stop we asked for."""

    exit_code: int | None = None
    error: str | None = None
    stopped: bool = False
    # Ended by us because its health check failed (x-extsvc onUnhealthy: restart).
    unhealthy: bool = False
    # Seconds from "Started task" to the exit; None when it never started.
    ran_for: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.exit_code == 0


class StateBoard:
    """Wakes everyone waiting on "some service changed state" (service conditions)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """Set at the next change: taken *before* looking, so no change goes unseen."""
        return self._changed


class ServiceRunner:
    def __init__(
        self,
        service: ServicePlan,
        runtime: ContainerRuntime,
        clock: Clock,
        host: HostFacts,
        log: ServiceLog,
        conditions: list[Condition],
        board: StateBoard,
        settings: RunnerSettings,
        on_event: Callable[[str, Event], None] | None = None,
        prepare_spec: Callable[[ServicePlan], dict[str, Any]] | None = None,
        dependency_gave_up: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.service = service
        self.runtime = runtime
        self.clock = clock
        self.host = host
        self.log = log
        self.conditions = conditions
        self.board = board
        self.settings = settings
        self._on_event = on_event
        # Run-time additions to the compiled spec (ExtensionServiceConfig); identity by default.
        self._prepare_spec = prepare_spec or (lambda s: s.spec)
        self.state = ServiceState.INITIALIZED
        self.events = EventHistory()
        self.last_change = Moment.now(clock)
        # The running task's container (None while waiting, even if one is created).
        self.container: Container | None = None
        # Created ahead of its start, with the spec it was created from.
        self._created: tuple[Container, str] | None = None
        self._early_create_failed = False
        # Attempts to run: every start, failed ones included (the log numbers them; `extsvc
        # service` shows runs - 1 as RESTARTS), and how many of them got a running task.
        self.runs = 0
        self.tasks_started = 0
        # Runs whose container never started (create or start failed).
        self.failed_starts = 0
        self.last_exit_code: int | None = None
        self.last_succeeded = False
        self._stop_requested = asyncio.Event()
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
        # Inside a runtime call or a readiness command: a stop cancels the lifecycle there.
        self._in_interruptible = False
        self._cancelled_by_stop = False
        # Set by kill_now(): a stop sends SIGKILL at once, or cuts the grace short.
        self._kill_now = asyncio.Event()
        # While a stop signals the task: when SIGTERM went (clock.monotonic()), the grace, and
        # when SIGKILL went; what `stop_status` tells an operator waiting for the stop.
        self._signalled: tuple[float, float, float | None] | None = None
        # The log file failing (disk full) and recovering: events of the current state.
        log.on_problem = lambda message: self._transition(self.state, message)

    @property
    def id(self) -> str:
        return self.service.id

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
        self._stop_requested = asyncio.Event()
        self._lifecycle = asyncio.create_task(self._run_lifecycle(), name=f"lifecycle {self.id}")
        return True

    async def stop(self) -> None:
        """End the lifecycle: whatever the state, it is final when this returns."""
        self._stop_requested.set()
        if self._in_interruptible and not self._cancelled_by_stop and self._lifecycle:
            self._cancelled_by_stop = True
            self._lifecycle.cancel()
        if self._lifecycle is not None:
            await asyncio.shield(self._lifecycle)

    def kill_now(self) -> None:
        """From now on a stop does not wait: SIGKILL at once (the grace cut short), then
        the same cleanup as ever (container deleted, mounts and cgroup removed)."""
        self._kill_now.set()

    def stop_status(self) -> str:
        """What the stop of this service is waiting for, for an operator ("SIGTERM sent 2s
        ago, SIGKILL in 8s")."""
        if self._signalled is not None:
            sent, grace, killed = self._signalled
            now = self.clock.monotonic()
            if killed is not None:
                return f"SIGKILL sent {format_duration(now - killed)} ago, waiting for it to exit"
            left = max(0.0, sent + grace - now)
            return (
                f"SIGTERM sent {format_duration(now - sent)} ago, "
                f"SIGKILL in {format_duration(left)}"
            )
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
            await self._discard_created()

    async def _lifecycle_steps(self) -> None:
        self._early_create_failed = False
        self.gave_up_reason = None
        ended = await self._wait_for_conditions()
        if ended is not None:
            # Waiting -> Skipped|Failed: stopped, timed out, or a dependency gave up.
            await self._discard_created()
            self._transition(*ended)
            return
        limit = self.service.policy.restart_limit
        # Per lifecycle: `service ID start` begins a new one with a clean record.
        budget = RestartBudget(limit) if limit is not None else None
        consecutive_failures = 0
        while True:
            if self._stop_requested.is_set():
                # Waiting -> Finished: stopped before the next run began.
                self._transition(ServiceState.FINISHED, "Service stopped")
                return
            outcome = await self._run_once()
            if outcome.stopped:
                # Stopping -> Finished: the stop we asked for completed.
                self._transition(ServiceState.FINISHED, "Service stopped")
                return
            report = self._describe_outcome(outcome)
            forked = self._exited_at_once(outcome)
            exit_code = outcome.exit_code if outcome.error is None else None
            # An unhealthy restart was asked for explicitly: whatever the exit policy says.
            restarts = outcome.unhealthy or self.service.restart.restarts_after(exit_code)
            if not restarts:
                # Running/Preparing -> Finished|Failed: the policy says this was the last run.
                if outcome.succeeded:
                    self._transition(ServiceState.FINISHED, "Service finished successfully")
                else:
                    self._transition(ServiceState.FAILED, report, failure=not outcome.succeeded)
                return
            if (
                not outcome.succeeded
                and budget is not None
                and budget.exhausted_by(self.clock.monotonic())
            ):
                # -> Failed: too many failures in the window; only `start` tries again.
                self._transition(ServiceState.FAILED, f"{budget.describe()}: {report}")
                return
            consecutive_failures = 0 if outcome.succeeded else consecutive_failures + 1
            delay = self.settings.restart.delay(max(consecutive_failures, 1))
            how = {
                RestartPolicy.ALWAYS: "forever",
                RestartPolicy.UNTIL_SUCCESS: "until it succeeds",
                RestartPolicy.NEVER: "(unhealthy)",
            }[self.service.restart]
            # Running/Preparing -> Waiting: the policy restarts it after the interval.
            # A task that exits 0 at once loops as surely as a failing one: its
            # repeats fold the same way.
            self._transition(
                ServiceState.WAITING,
                f"{report}; restarting {how} in {format_duration(delay)}",
                failure=not outcome.succeeded or forked,
            )
            began = self.clock.monotonic()
            # A task that could not even start would fail to be created ahead as well.
            self._early_create_failed = outcome.error is not None
            created = await self._interruptible(self._create_early())
            remaining = max(0.0, delay - (self.clock.monotonic() - began))
            if created is _STOPPED or (
                await self._until_stop(self.clock.sleep(remaining)) is _STOPPED
            ):
                # Waiting -> Finished: stopped between two runs.
                await self._discard_created()
                self._transition(ServiceState.FINISHED, "Service stopped")
                return

    def _describe_outcome(self, outcome: RunOutcome) -> str:
        if outcome.unhealthy:
            check = self.service.policy.health
            retries = check.retries if check is not None else 0
            return (
                f'task "{self.id}" unhealthy: health check failed {retries} times in a row '
                f"({self.last_health_message})"
            )
        # runc's own error (a long logfmt line) is reduced to its cause; the log keeps it all.
        last = runc_cause(self.log.last_line)
        last_log = f' (last log "{last}")' if last else ""
        if outcome.error is not None:
            return f'Failed to start task "{self.id}": {runc_cause(outcome.error)}{last_log}'
        if self._exited_at_once(outcome):
            return (
                f'Task "{self.id}" finished: exit code 0; the entrypoint exited 0 at once '
                f"(within {format_duration(EXITED_AT_ONCE)} of its start): "
                "a daemon that forks needs its foreground flag"
            )
        if outcome.exit_code == 0:
            return f'Task "{self.id}" finished: exit code 0'
        code = "unknown" if outcome.exit_code is None else str(outcome.exit_code)
        return f'task "{self.id}" failed: exit code {code}{last_log}'

    def _exited_at_once(self, outcome: RunOutcome) -> bool:
        """A `restart: always` task's exit 0 within EXITED_AT_ONCE of its start."""
        return (
            self.service.restart is RestartPolicy.ALWAYS
            and outcome.succeeded
            and not outcome.stopped
            and not outcome.unhealthy
            and outcome.ran_for is not None
            and outcome.ran_for < EXITED_AT_ONCE
        )

    async def _wait_for_conditions(self) -> tuple[ServiceState, str] | None:
        """Re-evaluate on a service state change, and each second for host conditions.

        None when the conditions are met; otherwise the final state and event to end
        the lifecycle with: stopped while waiting, a dependency that will never come
        up (an optional service failed), or the start timeout.
        """
        last_message = ""
        timeout = self.service.policy.start_timeout
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        while True:
            changed = self.board.next_change()
            unmet = await self._unmet()
            if unmet is None or self._stop_requested.is_set():
                # Stopped before its dependencies were met: it never ran.
                return ServiceState.SKIPPED, "Service skipped: stopped while waiting"
            if not unmet:
                return None
            waiting_for = ", ".join(c.describe() for c in unmet)
            message = "Waiting for " + waiting_for
            if message != last_message:
                # Initialized/Waiting -> Waiting: say what is still missing.
                self._transition(ServiceState.WAITING, message)
                last_message = message
            gave_up = self._dependency_gave_up()
            if gave_up is not None:
                self.gave_up_reason = gave_up
                return ServiceState.SKIPPED, f"Service skipped: {gave_up}"
            if deadline is not None and self.clock.monotonic() >= deadline:
                assert timeout is not None
                return ServiceState.FAILED, (
                    f"Start timeout ({short_duration(timeout)}) reached: "
                    f"still waiting for {waiting_for}"
                )
            spec_final = not any(c.affects_spec for c in unmet)
            if spec_final and await self._interruptible(self._create_early()) is _STOPPED:
                return ServiceState.SKIPPED, "Service skipped: stopped while waiting"
            wakeups: list[Awaitable[Any]] = [changed.wait()]
            if any(c.polled for c in unmet):
                wakeups.append(self.clock.sleep(self.settings.check_interval))
            if deadline is not None:
                wakeups.append(self.clock.sleep(max(0.0, deadline - self.clock.monotonic())))
            if await self._until_stop(_first_of(wakeups)) is _STOPPED:
                return ServiceState.SKIPPED, "Service skipped: stopped while waiting"

    async def _unmet(self) -> list[Condition] | None:
        """The conditions not met yet; None if a stop came while checking."""
        unmet = []
        for condition in self.conditions:
            if isinstance(condition, HostServiceUp) and condition.runs_command:
                # A readiness command may hang until its timeout: a stop does not wait.
                met = await self._interruptible(condition.satisfied())
                if isinstance(met, _Stopped):
                    return None
            else:
                met = await condition.satisfied()
            if not met:
                unmet.append(condition)
        return unmet

    def _spec(self) -> tuple[dict[str, Any], list[str]]:
        """The spec to run (compiled + run-time configuration, host-adapted) and what
        adaptation changed; raises LaunchError."""
        adapted, adaptations = adapt_spec(self._prepare_spec(self.service), self.host)
        return adapted, [adaptation.message for adaptation in adaptations]

    async def _create_early(self) -> None:
        """Create the container now so that its start is all that is left to do later."""
        if self._created is not None or self._early_create_failed:
            return
        try:
            spec, _ = self._spec()
            container = await self.runtime.create(self.service, spec, self._on_output)
        except LaunchError:
            # Tried again, and reported, when the service is due to start.
            self._early_create_failed = True
            return
        self._created = (container, spec_key(spec))

    async def _discard_created(self) -> None:
        if self._created is not None:
            self._created = None
            await self._cleanup()

    async def _cleanup(self) -> None:
        """runtime.cleanup; a runtime that hangs there is reported, not raised (each call
        is bounded by the runtime's own timeout, what it left is cleaned at the next run)."""
        try:
            await self.runtime.cleanup(self.service)
        except LaunchError as error:
            self._transition(self.state, f"Cleanup incomplete: {error}")

    def _on_output(self, line: bytes, read_at: float, partial: bool = False) -> None:
        self.log.write(line.decode(errors="replace"), read_at, partial)

    async def _run_once(self) -> RunOutcome:
        # -> Preparing: conditions are met (or the restart interval is over).
        self._transition(ServiceState.PREPARING, "Running pre state")
        # This attempt's number: taken once it starts or fails (a stop first takes none).
        run = self.runs + 1
        try:
            spec, adaptations = self._spec()
        except LaunchError as error:
            await self._discard_created()
            return self._failed_start(run, error)
        if self._created is not None and self._created[1] != spec_key(spec):
            # The spec changed since the container was created (a new configuration).
            await self._discard_created()
        for message in adaptations:
            # The same every run: an event once per executor start, then in `service ID`.
            if message not in self.adaptations:
                self.adaptations.append(message)
                self._transition(ServiceState.PREPARING, message)
        self._transition(ServiceState.PREPARING, "Creating service runner")
        if self._created is not None:
            container, self._created = self._created[0], None
        else:
            # A stop while the runtime works cancels its call (which kills it): a hung
            # runtime never holds up a stop for longer than its cleanup.
            try:
                created = await self._interruptible(
                    self.runtime.create(self.service, spec, self._on_output)
                )
            except LaunchError as error:
                return self._failed_start(run, error)
            if isinstance(created, _Stopped):
                await self._cleanup()
                return RunOutcome(stopped=True)
            container = created
        if self._stop_requested.is_set():
            # A stop that came as the create ended (3.11's wait_for may return the result
            # and drop the cancellation): the container is removed, never started.
            await self._cleanup()
            return RunOutcome(stopped=True)
        try:
            # Before the start: the container may write before "Started task" is known.
            self.log.begin_run(run, container.pid)
            try:
                if await self._interruptible(self.runtime.start(container)) is _STOPPED:
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
            result = await self._until_stop(container.wait(), also=self._unhealthy)
            ran_for = self.clock.monotonic() - started_at
            await self._stop_health_checks()
            ended_by_us = isinstance(result, _Stopped)
            stopped = ended_by_us and self._stop_requested.is_set()
            unhealthy = ended_by_us and not stopped
            exit_code = await self._terminate(container) if isinstance(result, _Stopped) else result
            self.last_exit_code = exit_code
            self.last_succeeded = exit_code == 0 and not ended_by_us
            self.log.mark(run_ended(exit_code, stopped))
            return RunOutcome(
                exit_code=exit_code, stopped=stopped, unhealthy=unhealthy, ran_for=ran_for
            )
        finally:
            await self._stop_health_checks()
            self.container = None
            await self._cleanup()

    def _start_health_checks(self, container: Container, spec: dict[str, Any]) -> None:
        self._unhealthy = asyncio.Event()
        check = self.service.policy.health
        if check is None:
            return
        process, adaptation = check_process(check, spec, self.host)
        if adaptation is not None and adaptation not in self.adaptations:
            # Once per executor start, as the service's own adaptations.
            self.adaptations.append(adaptation)
            self._transition(ServiceState.RUNNING, adaptation)

        def run_check(argv: Sequence[str], timeout: float) -> Awaitable[ExecResult]:
            return self.runtime.exec(container, argv, timeout, process)

        self.health_monitor = HealthMonitor(check, run_check, self.clock, self._health_changed)
        self.health_monitor.start()

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

    async def _terminate(self, container: Container) -> int | None:
        grace = self.stop_timeout
        if self._kill_now.is_set():
            # Running -> Stopping: told to kill at once (the executor's third Ctrl-C).
            self._transition(
                ServiceState.STOPPING,
                f"Sending SIGKILL to task {self.id} (PID {container.pid}, container {self.id}): "
                "the executor was told to kill at once",
            )
            self._signalled = (self.clock.monotonic(), 0.0, self.clock.monotonic())
            container.signal(signal.SIGKILL)
            try:
                return await container.wait()
            finally:
                self._signalled = None
        # Running -> Stopping: SIGTERM to every process, then the grace period.
        self._transition(
            ServiceState.STOPPING,
            f"Sending SIGTERM to task {self.id} (PID {container.pid}, container {self.id})",
        )
        container.signal(signal.SIGTERM)
        self._signalled = (self.clock.monotonic(), grace, None)
        waiting = asyncio.ensure_future(container.wait())
        sleeping = asyncio.ensure_future(self.clock.sleep(grace))
        hurried = asyncio.ensure_future(self._kill_now.wait())
        try:
            await asyncio.wait({waiting, sleeping, hurried}, return_when=asyncio.FIRST_COMPLETED)
            sleeping.cancel()
            hurried.cancel()
            if not waiting.done():
                why = (
                    "the executor was told to kill at once"
                    if self._kill_now.is_set()
                    else f"still running {format_duration(grace)} after SIGTERM"
                )
                self._transition(
                    ServiceState.STOPPING,
                    f"Sending SIGKILL to task {self.id} (PID {container.pid}, "
                    f"container {self.id}): {why}",
                )
                self._signalled = (self._signalled[0], grace, self.clock.monotonic())
                container.signal(signal.SIGKILL)
            return await waiting
        finally:
            self._signalled = None

    @property
    def stop_timeout(self) -> float:
        """SIGTERM -> SIGKILL grace: the service's own (x-extsvc stopTimeout) or the executor's."""
        return grace(self.service.policy, self.settings.stop_timeout)

    async def _interruptible(self, awaitable: Awaitable[T]) -> T | _Stopped:
        """``awaitable``'s result, or _STOPPED if a stop came first and cancelled it.

        Awaited inline, not as a task of its own (as _until_stop does): no extra turn
        of the loop, so the order of events stays what it was without a stop. A stop
        cancels the lifecycle task while it is in here; the call's own cancellation
        kills the runtime process (or the readiness command) and removes what it made.
        """
        self._in_interruptible = True
        try:
            return await awaitable
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancelled_by_stop or task is None:
                raise
            task.uncancel()
            return _STOPPED
        finally:
            self._in_interruptible = False
            self._cancelled_by_stop = False

    async def _until_stop(
        self, awaitable: Awaitable[T], also: asyncio.Event | None = None
    ) -> T | _Stopped:
        """``awaitable``'s result, or _STOPPED (the awaitable cancelled) if a stop (or
        ``also``) comes first."""
        work = asyncio.ensure_future(awaitable)
        interrupts = [asyncio.ensure_future(self._stop_requested.wait())]
        if also is not None:
            interrupts.append(asyncio.ensure_future(also.wait()))
        await asyncio.wait({work, *interrupts}, return_when=asyncio.FIRST_COMPLETED)
        for interrupt in interrupts:
            interrupt.cancel()
        # Both may be over at once (a container that died at start, a wait of 0 s): the
        # stop wins then, or a crash loop on a loaded host could outrun every stop.
        interrupted = self._stop_requested.is_set() or (also is not None and also.is_set())
        if work.done() and (not interrupted or work.exception() is not None):
            return work.result()
        if work.done():
            return _STOPPED
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return _STOPPED


class _Stopped:
    pass


_STOPPED = _Stopped()


async def _first_of(awaitables: list[Awaitable[Any]]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
