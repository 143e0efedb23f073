"""How late the event loop runs, measured from inside, without waking it up.

A control request answered seconds late may have waited in three places: in
the loop (callbacks ahead of it in the same turn), for a CPU (the executor's
process runnable but not running: a loaded host), or in the client. This module
measures the first two where the loop already is, in its selector:

* each turn of the loop is ``select()`` returning, the ready callbacks running,
  then ``select()`` entered again: the time between is one *batch*, and any
  callback made ready in that turn waited at most that long;
* a ``select()`` that returns with nothing ready after its whole timeout was
  woken for a timer: how much later than the timeout it returned is the timer's
  *lateness* (the kernel's wake-up plus the wait for a CPU);
* the kernel's own count of the time the process spent runnable without a CPU
  (``/proc/self/schedstat``, second field), read at most once a second, and only
  at the end of a turn: a loop that sleeps reads nothing.

No timer of its own: an idle executor stays idle (0 context switches). All on
CLOCK_MONOTONIC; what leaves the process are durations and fractions.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# The summaries cover this much recent time.
WINDOW = 60.0
# Turns and wake-ups remembered (a log flood makes thousands of turns a second: the
# window is then shorter than WINDOW, and the summary says how long it is).
KEPT = 4096
SCHEDSTAT = "/proc/self/schedstat"
# How often, at most, the scheduler's figure is read.
SCHEDSTAT_EVERY = 1.0


class _MonitoredSelector:
    """The loop's selector with each select() timed; everything else passed through."""

    def __init__(self, inner: Any, stats: LoopStats) -> None:
        self._inner = inner
        self._stats = stats

    def select(self, timeout: float | None = None) -> Any:
        stats = self._stats
        entered = time.monotonic()
        stats.end_batch(entered)
        ready = self._inner.select(timeout)
        stats.begin_batch(entered, timeout, bool(ready), time.monotonic())
        return ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class LoopStats:
    def __init__(self) -> None:
        self.batches: deque[tuple[float, float]] = deque(maxlen=KEPT)  # (ended at, seconds)
        self.late_timers: deque[tuple[float, float]] = deque(maxlen=KEPT)  # (at, seconds)
        self.cpu_waits: deque[tuple[float, float]] = deque(maxlen=128)  # (at, waited total)
        self._batch_began: float | None = None
        self._schedstat_at = 0.0
        self.installed = False
        # Told each timer's lateness as it is measured (the metrics' event-loop lag).
        self.on_timer_late: Callable[[float], None] | None = None

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> LoopStats:
        """Time ``loop``'s selector from now on; a loop without one is not measured
        (``installed`` stays False and the summary says so)."""
        stats = cls()
        selector = getattr(loop, "_selector", None)
        if selector is not None and hasattr(selector, "select"):
            loop._selector = _MonitoredSelector(selector, stats)  # type: ignore[attr-defined]
            stats.installed = True
            stats._read_schedstat(time.monotonic())
        return stats

    def end_batch(self, now: float) -> None:
        began = self._batch_began
        if began is None:
            return
        self.batches.append((now, now - began))
        if now - self._schedstat_at >= SCHEDSTAT_EVERY:
            self._read_schedstat(now)

    def begin_batch(self, entered: float, timeout: float | None, ready: bool, now: float) -> None:
        if not ready and timeout is not None and timeout > 0:
            late = max(0.0, now - entered - timeout)
            self.late_timers.append((now, late))
            if self.on_timer_late is not None:
                self.on_timer_late(late)
        self._batch_began = now

    def _read_schedstat(self, now: float) -> None:
        self._schedstat_at = now
        try:
            with open(SCHEDSTAT, "rb") as handle:
                waited_ns = int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            return
        self.cpu_waits.append((now, waited_ns / 1e9))

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """The last WINDOW seconds: batches (count, busy fraction, p50/p99/max), timer
        lateness (p50/p99/max) and the fraction of the time spent waiting for a CPU."""
        if not self.installed:
            return {"measured": False}
        now = time.monotonic() if now is None else now
        since = now - WINDOW
        batches = [seconds for at, seconds in self.batches if at >= since]
        late = [seconds for at, seconds in self.late_timers if at >= since]
        oldest = min((at - s for at, s in self.batches if at >= since), default=now)
        span = max(now - max(oldest, since), 1e-9)
        waits = [(at, total) for at, total in self.cpu_waits if at >= since]
        cpu_wait = None
        if len(waits) >= 2 and waits[-1][0] > waits[0][0]:
            cpu_wait = round((waits[-1][1] - waits[0][1]) / (waits[-1][0] - waits[0][0]), 3)
        return {
            "measured": True,
            "windowSeconds": round(span, 3),
            "batches": len(batches),
            "busy": round(min(sum(batches) / span, 1.0), 3),
            "batchSeconds": _percentiles(batches),
            "timerLateSeconds": _percentiles(late),
            "cpuWait": cpu_wait,
        }


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 4)

    return {"p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 4)}
