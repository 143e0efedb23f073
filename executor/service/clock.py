"""Time as the supervisor sees it, injected so restart policy is testable with a fake clock.

Three readings, each with one job (systemd keeps the same ones side by side in
``dual_timestamp``/``triple_timestamp`` and arms every unit timeout on the monotonic one):

* ``monotonic()`` -- CLOCK_MONOTONIC, the event loop's own clock (``loop.time()``):
  every deadline and every duration the executor acts on (start timeouts, restart
  delays, health intervals, restart-limit windows, stop graces, runtime timeouts).
  Time sync stepping the wall clock a year either way does not move it; a suspend
  does not advance it, which is what a timeout wants: a suspended machine gave no
  service time to come up. ``sleep`` waits on this clock.
* ``boottime()`` -- CLOCK_BOOTTIME: like monotonic, but a suspend counts. Only for
  ages shown to people ("5m ago"), which should count a night in suspend.
* ``wall()`` -- seconds since the epoch: a label for people (event times, log lines,
  RFC 3339 stamps), never an operand of a deadline.

Monotonic and boottime readings belong to this boot and this process's view of it:
none is written to disk or sent over the control socket; only wall labels and
durations computed here are.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """CLOCK_MONOTONIC seconds, the clock ``sleep`` waits on: all deadline arithmetic."""
        ...

    def boottime(self) -> float:
        """CLOCK_BOOTTIME seconds (suspend included): ages shown to people."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: labels only (it steps when time sync corrects it)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of monotonic time."""
        ...


@dataclass(frozen=True)
class Moment:
    """One instant read on all three clocks: arithmetic on ``monotonic``/``boottime``,
    ``wall`` to label it."""

    wall: float
    monotonic: float
    boottime: float

    @classmethod
    def now(cls, clock: Clock) -> Moment:
        return cls(clock.wall(), clock.monotonic(), clock.boottime())


class SystemClock:
    def monotonic(self) -> float:
        # The same clock asyncio's timers run on (loop.time() is time.monotonic()).
        return time.monotonic()

    def boottime(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
