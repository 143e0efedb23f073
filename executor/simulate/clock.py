"""Virtual time: the executor's Clock (``service.clock``) where time moves only when told.

One clock for both users of scripted time. ``extsvc plan --simulate`` runs the
supervisor on a ``VirtualTimeLoop``, which moves the clock to the next deadline
whenever the loop would otherwise sleep, so five simulated minutes take
milliseconds. Policy tests run a plain event loop and move the clock themselves
with ``advance``, stepping the wall clock (``step_wall``) or counting a suspend
(``suspended``) where the scenario needs it.

Invariants:

* The clock moves only when told (``advance``, ``step_wall``, ``suspended``) or when
  its ``VirtualTimeLoop`` has nothing ready to run; never by itself, never backwards
  (``monotonic`` and ``boottime``; ``wall`` steps either way, as time sync steps it).
* Sleepers wake in deadline order, those due at one instant in the order they went
  to sleep, each instant's wake-ups run before the clock moves on: a timeline is the
  same on every run.
* ``monotonic`` is the loop's ``time()`` on a ``VirtualTimeLoop``, so asyncio's own
  timers (``wait_for``) run on the same virtual time as ``sleep``.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until the loop has nothing left to do now."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class VirtualClock:
    """``time`` is the monotonic reading, which ``sleep`` waits on and only ``advance``
    or a ``VirtualTimeLoop`` moves; the wall clock is ``time`` plus an offset that
    ``step_wall`` changes, boottime is ``time`` plus ``suspended``.

    ``start``: the first monotonic reading; ``wall``: the wall clock then (default:
    the same number, as the simulation's seconds since boot)."""

    def __init__(self, start: float = 0.0, wall: float | None = None) -> None:
        self.time = start
        self.wall_offset = 0.0 if wall is None else wall - start
        self.suspended = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.time

    def boottime(self) -> float:
        return self.time + self.suspended

    def wall(self) -> float:
        return self.time + self.wall_offset

    def step_wall(self, seconds: float) -> None:
        """The wall clock jumps (``clock_settime``); monotonic time does not move."""
        self.wall_offset += seconds

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.time + seconds, future)
        self._sleepers.append(entry)
        try:
            await future
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order and letting them run."""
        target = self.time + seconds
        await settle()
        while self.wake_next(target):
            await settle()
        self.time = target
        await settle()

    def wake_next(self, limit: float | None = None) -> bool:
        """Move to the earliest sleeper's deadline, if any is at most ``limit`` (None: no
        limit), and wake every sleeper due then; False when none was."""
        due = [
            entry
            for entry in self._sleepers
            if (limit is None or entry[0] <= limit) and not entry[1].done()
        ]
        if not due:
            return False
        deadline = min(moment for moment, _ in due)
        self.time = max(self.time, deadline)
        for moment, future in due:
            if moment == deadline:
                future.set_result(None)
        return True


class _VirtualSelector:
    """Never blocks: where the loop would wait, its clock moves to what is due next."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None or timeout > 0:
            # Nothing is ready: the next deadline is the clock's next sleeper or the
            # loop's next timer (``timeout`` from now), whichever comes first.
            clock = self._loop.clock
            timer = None if timeout is None else clock.time + timeout
            if not clock.wake_next(timer):
                if timer is None:
                    # No sleeper and no timer: nothing can ever happen again.
                    self._loop.stop()
                    return []
                clock.time = timer
        return self._inner.select(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on ``clock``'s time, which it moves instead of sleeping.

    Invariant: virtual time stays far below 2**24 s, where ``time() +
    clock_resolution`` (how asyncio tells a timer is due) would round back to
    ``time()`` and a timer due now would never run: every duration of the facts is
    at most MAX_SECONDS (one week, ``format.quantities``) and boot is at 0."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        super().__init__(selectors.DefaultSelector())
        self._selector = _VirtualSelector(self)

    def time(self) -> float:
        return self.clock.monotonic()
