"""The restart limit (x-extsvc ``restartLimit``): Talos restarts forever; this stops a loop.

More than ``count`` failed runs within ``window`` seconds and the service is
Failed for good, with an event that says why. The record belongs to one
lifecycle, so ``extsvc service ID start`` (a new lifecycle) clears it.
"""

from __future__ import annotations

import re
from collections import deque

from extsvc.compiler.format.plan import RestartLimit
from extsvc.executor.durations import format_duration


class RestartBudget:
    def __init__(self, limit: RestartLimit) -> None:
        self.limit = limit
        self._failures: deque[float] = deque()

    def exhausted_by(self, failed_at: float) -> bool:
        """Record a failed run at ``failed_at`` (monotonic seconds: a wall-clock step
        must neither forget the failures before it nor keep them for ever); True when
        it takes the failures over the limit."""
        self._failures.append(failed_at)
        while self._failures and self._failures[0] <= failed_at - self.limit.window:
            self._failures.popleft()
        return len(self._failures) > self.limit.count

    def describe(self) -> str:
        return (
            f"restart limit reached ({self.limit.count} failures in "
            f"{short_duration(self.limit.window)})"
        )


def short_duration(seconds: float) -> str:
    """Like the user wrote it: 1m, not 1m0s (zero parts dropped)."""
    text = format_duration(seconds)
    # "1h0m0s" -> "1h", "1m0s" -> "1m" in one pass (the look-behind sees the text as
    # it was); "10m" and "500ms" stay as they are.
    return re.sub(r"(?<=[hm])0[ms]", "", text)
