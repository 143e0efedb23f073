"""Service states and the event history `extsvc service NAME` shows (Talos's vocabulary)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from extsvc.executor.logs.logfile import stamp

if TYPE_CHECKING:  # `extsvc service` renders events without importing asyncio
    from extsvc.executor.service.clock import Moment

EVENT_HISTORY = 64


class ServiceState(Enum):
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PREPARING = "Preparing"
    RUNNING = "Running"
    STOPPING = "Stopping"
    FINISHED = "Finished"
    FAILED = "Failed"
    SKIPPED = "Skipped"


# Every allowed transition; ServiceRunner._transition asserts against this table.
# Staying in a state (a new event with the same state) is always allowed.
TRANSITIONS: dict[ServiceState, frozenset[ServiceState]] = {
    # A lifecycle starts by checking its conditions, or prepares straight away.
    ServiceState.INITIALIZED: frozenset({ServiceState.WAITING, ServiceState.PREPARING}),
    # Conditions met or restart interval over -> prepare; stopped while waiting -> final.
    # Start timeout (x-extsvc startTimeout) -> Failed.
    ServiceState.WAITING: frozenset(
        {ServiceState.PREPARING, ServiceState.SKIPPED, ServiceState.FINISHED, ServiceState.FAILED}
    ),
    # Task started -> Running; start failed -> wait to retry, or fail for good;
    # stopped while the runtime was still creating or starting it -> Finished.
    ServiceState.PREPARING: frozenset(
        {ServiceState.RUNNING, ServiceState.WAITING, ServiceState.FAILED, ServiceState.FINISHED}
    ),
    # Stop asked -> Stopping; task exited -> wait to restart, or final by policy.
    ServiceState.RUNNING: frozenset(
        {ServiceState.STOPPING, ServiceState.WAITING, ServiceState.FINISHED, ServiceState.FAILED}
    ),
    # The stopped task is gone and cleaned up; or it was stopped for being unhealthy
    # (x-extsvc onUnhealthy: restart) and waits for its restart.
    ServiceState.STOPPING: frozenset(
        {ServiceState.FINISHED, ServiceState.FAILED, ServiceState.WAITING}
    ),
    # start/restart of a service whose lifecycle has ended begins a new one.
    ServiceState.FINISHED: frozenset({ServiceState.WAITING, ServiceState.PREPARING}),
    ServiceState.FAILED: frozenset({ServiceState.WAITING, ServiceState.PREPARING}),
    ServiceState.SKIPPED: frozenset({ServiceState.WAITING, ServiceState.PREPARING}),
}


def folded(message: str, count: int) -> str:
    """How an event reads once ``count`` identical failures in a row are folded into it:
    ``... (x12)``. The one spelling, for the event itself and for ``extsvc service ID``,
    which shows events it received as JSON."""
    return message if count == 1 else f"{message} (\u00d7{count})"


@dataclass(frozen=True)
class Event:
    state: ServiceState
    message: str
    # When it happened: the wall reading labels it, the others measure its age.
    at: Moment
    # A run's failure (its report); identical ones in a row are folded into one, counted.
    failure: bool = False
    count: int = 1

    @property
    def text(self) -> str:
        return folded(self.message, self.count)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "message": self.message,
            "count": self.count,
            "time": stamp(self.at.wall),
        }


# The events of a run that ends in the same failure again say nothing new.
_ROUTINE_RUN_STATES = frozenset({ServiceState.PREPARING, ServiceState.RUNNING})


class EventHistory:
    """The last EVENT_HISTORY events, oldest first.

    A crash loop repeats the same four events per run; kept as they come, ten
    restarts would push everything else out. So when a failure repeats the last
    failure word for word, the run in between (pre state, runner, "Started
    task", all routine) is dropped and the failure is counted instead: the
    history reads ``task "ext-x" failed: exit code 1 ... (x12)`` and keeps the
    events from before the loop.
    """

    def __init__(self, limit: int = EVENT_HISTORY) -> None:
        self._events: deque[Event] = deque(maxlen=limit)

    def append(self, event: Event) -> Event:
        """Record ``event``; returns it as stored (with its fold count)."""
        if event.failure:
            for index in range(len(self._events) - 1, -1, -1):
                previous = self._events[index]
                if not previous.failure:
                    continue
                between = list(self._events)[index + 1 :]
                routine = all(e.state in _ROUTINE_RUN_STATES for e in between)
                if routine and (previous.state, previous.message) == (event.state, event.message):
                    while len(self._events) > index:
                        self._events.pop()
                    event = replace(event, count=previous.count + 1)
                break
        self._events.append(event)
        return event

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    @property
    def last(self) -> Event | None:
        return self._events[-1] if self._events else None
