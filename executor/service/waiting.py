"""The Waiting state before a service's first run: its conditions, waited for.

Conditions (Talos's ``depends``) are looked at again when a service changes state
(the state board: a dependency up, a configuration document come), every check
interval while a polled one (a path, the network, the time, a host service) is
unmet, and at the start timeout: a service that waits for other services only has
no timer. Each new set of unmet conditions is a "Waiting for ..." event.
Once none of the unmet ones changes the spec (a configuration document, an
environment file) the container is created ahead, so that only `start` is left when
they are met.

The wait ends with the conditions met, or with the lifecycle's final state: Skipped
(stopped while waiting, or a dependency that will never come up), Failed (the start
timeout, x-extsvc ``startTimeout``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from extsvc.compiler.format.durations import short_duration
from extsvc.executor.service.board import StateBoard
from extsvc.executor.service.clock import Clock
from extsvc.executor.service.conditions import Condition, HostServiceUp
from extsvc.executor.service.states import ServiceState
from extsvc.executor.service.tasks import STOPPED, Stopped, StopRequest, first_of

STOPPED_WHILE_WAITING = "Service skipped: stopped while waiting"


@dataclass(frozen=True)
class WaitEnded:
    """The lifecycle's final state and event, when it ends while waiting."""

    state: ServiceState
    message: str
    # Why a dependency will never come up, when that ended it: its dependents skip too.
    gave_up: str | None = None


@dataclass(frozen=True)
class Waiting:
    """What a lifecycle waits with: its conditions, how often polled ones are looked
    at, its start timeout, and what it does meanwhile."""

    conditions: list[Condition]
    board: StateBoard
    clock: Clock
    check_interval: float
    start_timeout: float | None
    # A "Waiting for ..." event.
    say: Callable[[str], None]
    # Why a dependency will never come up (an optional service failed), if one won't.
    dependency_gave_up: Callable[[], str | None]
    # Creates the container ahead of its start (once; a failure is kept for the start).
    create_ahead: Callable[[], Awaitable[None]]

    async def until_met(self, stop: StopRequest) -> WaitEnded | None:
        """None once the conditions are met; else how the lifecycle ends."""
        last_message = ""
        timeout = self.start_timeout
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        while True:
            changed = self.board.next_change()
            unmet = await self._unmet(stop)
            if unmet is None or stop.is_set():
                # Stopped before its dependencies were met: it never ran.
                return WaitEnded(ServiceState.SKIPPED, STOPPED_WHILE_WAITING)
            if not unmet:
                return None
            waiting_for = ", ".join(c.describe() for c in unmet)
            message = "Waiting for " + waiting_for
            if message != last_message:
                # Initialized/Waiting -> Waiting: say what is still missing.
                self.say(message)
                last_message = message
            gave_up = self.dependency_gave_up()
            if gave_up is not None:
                return WaitEnded(ServiceState.SKIPPED, f"Service skipped: {gave_up}", gave_up)
            if deadline is not None and self.clock.monotonic() >= deadline:
                assert timeout is not None
                return WaitEnded(
                    ServiceState.FAILED,
                    f"Start timeout ({short_duration(timeout)}) reached: "
                    f"still waiting for {waiting_for}",
                )
            spec_final = not any(c.affects_spec for c in unmet)
            if spec_final and await stop.interruptible(self.create_ahead()) is STOPPED:
                return WaitEnded(ServiceState.SKIPPED, STOPPED_WHILE_WAITING)
            wakeups: list[Awaitable[Any]] = [changed.wait()]
            if any(c.polled for c in unmet):
                wakeups.append(self.clock.sleep(self.check_interval))
            if deadline is not None:
                wakeups.append(self.clock.sleep(max(0.0, deadline - self.clock.monotonic())))
            if await stop.until(first_of(wakeups)) is STOPPED:
                return WaitEnded(ServiceState.SKIPPED, STOPPED_WHILE_WAITING)

    async def _unmet(self, stop: StopRequest) -> list[Condition] | None:
        """The conditions not met yet; None if a stop came while checking."""
        unmet = []
        for condition in self.conditions:
            if isinstance(condition, HostServiceUp) and condition.runs_command:
                # A readiness command may hang until its timeout: a stop does not wait.
                met = await stop.interruptible(condition.satisfied())
                if isinstance(met, Stopped):
                    return None
            else:
                met = await condition.satisfied()
            if not met:
                unmet.append(condition)
        return unmet
