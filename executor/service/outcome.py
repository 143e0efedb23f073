"""How one run ended, and the event that says so.

A run ends with an exit code, a start that failed, a stop we asked for, or our kill
because its health check failed. The report names the cause a person can act on:
runc's own error reduced to its cause, the service's last log line, and a
`restart: always` task that exited 0 at once (a daemon that forked).
"""

from __future__ import annotations

from dataclasses import dataclass

from extsvc.compiler.format.durations import format_duration
from extsvc.compiler.format.plan import ServicePlan
from extsvc.compiler.format.servicepolicy import RestartPolicy
from extsvc.executor.runtime.causes import runc_cause

# A `restart: always` task that exits 0 sooner than this after its start did not run
# as a service: its entrypoint is almost surely a daemon that forked into the
# background (the init's exit ends the container, the daemon with it). A service that
# means to stay up and really ran ends later than this; a one-shot says `never` or
# `untilSuccess`, where an early exit 0 is what it should do.
EXITED_AT_ONCE = 1.0


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


def exited_at_once(outcome: RunOutcome, policy: RestartPolicy) -> bool:
    """A `restart: always` task's exit 0 within EXITED_AT_ONCE of its start."""
    return (
        policy is RestartPolicy.ALWAYS
        and outcome.succeeded
        and not outcome.stopped
        and not outcome.unhealthy
        and outcome.ran_for is not None
        and outcome.ran_for < EXITED_AT_ONCE
    )


def describe(outcome: RunOutcome, service: ServicePlan, last_line: str, health: str) -> str:
    """The event of a run that ended on its own; ``last_line`` is the service's last log
    line, ``health`` the health check's last message."""
    if outcome.unhealthy:
        check = service.policy.health
        retries = check.retries if check is not None else 0
        return (
            f'task "{service.id}" unhealthy: health check failed {retries} times in a row '
            f"({health})"
        )
    # runc's own error (a long logfmt line) is reduced to its cause; the log keeps it all.
    last = runc_cause(last_line)
    last_log = f' (last log "{last}")' if last else ""
    if outcome.error is not None:
        return f'Failed to start task "{service.id}": {runc_cause(outcome.error)}{last_log}'
    if exited_at_once(outcome, service.restart):
        return (
            f'Task "{service.id}" finished: exit code 0; the entrypoint exited 0 at once '
            f"(within {format_duration(EXITED_AT_ONCE)} of its start): "
            "a daemon that forks needs its foreground flag"
        )
    if outcome.exit_code == 0:
        return f'Task "{service.id}" finished: exit code 0'
    code = "unknown" if outcome.exit_code is None else str(outcome.exit_code)
    return f'task "{service.id}" failed: exit code {code}{last_log}'
