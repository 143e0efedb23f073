"""Whether a service runs again after a run, and after how long: the restart decision.

After every run that ended on its own (a stop we asked for ends the lifecycle, with
no decision), the runner asks its lifecycle's ``Restarts`` once, and does what the
answer says. Three rules, in this order:

1. The policy (Talos's ``restart``): ``always`` restarts after any exit,
   ``untilSuccess`` until an exit 0, ``never`` after none. A start that failed counts
   as a failure. A run ended because its health check failed (x-extsvc
   ``onUnhealthy: restart``) restarts whatever the policy.
2. The restart limit (x-extsvc ``restartLimit``; Talos restarts for ever): more than
   ``count`` failed runs within ``window`` seconds and the service is Failed for good,
   with an event that says why.
3. The delay before the next run: the restart interval (``run --restart-interval``,
   Talos's 5 s); with ``--restart-backoff-max``, doubled per consecutive failure up to
   that cap, and back to the interval after a success.

The record (failures in the window, consecutive failures) belongs to one lifecycle,
so ``extsvc service ID start`` (a new lifecycle) clears it. Every time is a monotonic
reading: a wall-clock step neither forgets the failures before it nor keeps them for ever.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from extsvc.compiler.format.durations import format_duration, short_duration
from extsvc.compiler.format.servicepolicy import RestartLimit, RestartPolicy
from extsvc.executor.options import DEFAULT_RESTART_INTERVAL
from extsvc.executor.service.outcome import RunOutcome


@dataclass(frozen=True)
class RestartTiming:
    """The wait between two runs: ``interval``; ``max_interval`` turns on a capped
    exponential backoff for consecutive failures."""

    interval: float = DEFAULT_RESTART_INTERVAL
    max_interval: float | None = None

    def delay(self, consecutive_failures: int) -> float:
        if self.max_interval is None or consecutive_failures <= 1:
            return self.interval
        backoff: float = self.interval * 2 ** (consecutive_failures - 1)
        return min(backoff, self.max_interval)


def restarts_after(policy: RestartPolicy, exit_code: int | None) -> bool:
    """Talos's policy: ``always`` after any exit, ``untilSuccess`` until exit 0 (None: the
    task never started), ``never`` after none."""
    if policy is RestartPolicy.ALWAYS:
        return True
    if policy is RestartPolicy.UNTIL_SUCCESS:
        return exit_code != 0
    return False


class RestartBudget:
    """The restart limit's record: failed runs within the window."""

    def __init__(self, limit: RestartLimit) -> None:
        self.limit = limit
        self._failures: deque[float] = deque()

    def exhausted_by(self, failed_at: float) -> bool:
        """Record a failed run at ``failed_at`` (monotonic seconds); True when it takes
        the failures over the limit."""
        self._failures.append(failed_at)
        while self._failures and self._failures[0] <= failed_at - self.limit.window:
            self._failures.popleft()
        return len(self._failures) > self.limit.count

    def describe(self) -> str:
        return (
            f"restart limit reached ({self.limit.count} failures in "
            f"{short_duration(self.limit.window)})"
        )


class Verdict(Enum):
    # The policy says that run was the last: Finished after a success, else Failed.
    LAST_RUN = "last run"
    # The policy would restart, the restart limit does not: Failed.
    LIMIT_REACHED = "limit reached"
    # The next run after ``Decision.delay``.
    RESTART = "restart"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # Seconds until the next run (RESTART only).
    delay: float = 0.0
    # What the event adds to the run's report: "restarting forever in 5s",
    # "restart limit reached (5 failures in 1m)"; empty for LAST_RUN.
    message: str = ""


# How the restart is announced, by the policy that decided it (`never` restarts only
# an unhealthy task).
_HOW = {
    RestartPolicy.ALWAYS: "forever",
    RestartPolicy.UNTIL_SUCCESS: "until it succeeds",
    RestartPolicy.NEVER: "(unhealthy)",
}


class Restarts:
    """One lifecycle's restart decisions."""

    def __init__(
        self, policy: RestartPolicy, limit: RestartLimit | None, timing: RestartTiming
    ) -> None:
        self.policy = policy
        self.timing = timing
        self._budget = RestartBudget(limit) if limit is not None else None
        self._consecutive_failures = 0

    def after(self, outcome: RunOutcome, now: float) -> Decision:
        """What follows ``outcome`` (not a stop we asked for), the run ended at ``now``
        (monotonic seconds)."""
        exit_code = outcome.exit_code if outcome.error is None else None
        if not (outcome.unhealthy or restarts_after(self.policy, exit_code)):
            return Decision(Verdict.LAST_RUN)
        if not outcome.succeeded and self._budget is not None and self._budget.exhausted_by(now):
            return Decision(Verdict.LIMIT_REACHED, message=self._budget.describe())
        self._consecutive_failures = 0 if outcome.succeeded else self._consecutive_failures + 1
        delay = self.timing.delay(max(self._consecutive_failures, 1))
        how = _HOW[self.policy]
        return Decision(Verdict.RESTART, delay, f"restarting {how} in {format_duration(delay)}")
