"""The restart decision as a table: how a run ended x the policy x the failures before
it -> restart or not, and after how long (executor.service.restart, no runtime)."""

from __future__ import annotations

import pytest

from extsvc.compiler.format.servicepolicy import RestartLimit, RestartPolicy
from extsvc.executor.options import DEFAULT_RESTART_INTERVAL
from extsvc.executor.service.outcome import RunOutcome
from extsvc.executor.service.restart import Decision, Restarts, RestartTiming, Verdict

ALWAYS, NEVER = RestartPolicy.ALWAYS, RestartPolicy.NEVER
UNTIL_SUCCESS = RestartPolicy.UNTIL_SUCCESS
EXIT_0 = RunOutcome(exit_code=0, ran_for=60.0)
EXIT_1 = RunOutcome(exit_code=1, ran_for=60.0)
KILLED = RunOutcome(exit_code=None, ran_for=60.0)  # no exit code: a signal we could not read
START_FAILED = RunOutcome(error="runc create failed: no such file")
UNHEALTHY = RunOutcome(exit_code=143, unhealthy=True, ran_for=60.0)
UNHEALTHY_EXIT_0 = RunOutcome(exit_code=0, unhealthy=True, ran_for=60.0)
LAST = Decision(Verdict.LAST_RUN)


def restart(delay: float, how: str) -> Decision:
    return Decision(Verdict.RESTART, delay, f"restarting {how} in {delay:g}s")


@pytest.mark.parametrize(
    ("policy", "outcome", "expected"),
    [
        # always: after any exit, a success included.
        (ALWAYS, EXIT_0, restart(5, "forever")),
        (ALWAYS, EXIT_1, restart(5, "forever")),
        (ALWAYS, KILLED, restart(5, "forever")),
        (ALWAYS, START_FAILED, restart(5, "forever")),
        (ALWAYS, UNHEALTHY, restart(5, "forever")),
        # untilSuccess: until an exit 0; a start that failed is not a success.
        (UNTIL_SUCCESS, EXIT_0, LAST),
        (UNTIL_SUCCESS, EXIT_1, restart(5, "until it succeeds")),
        (UNTIL_SUCCESS, KILLED, restart(5, "until it succeeds")),
        (UNTIL_SUCCESS, START_FAILED, restart(5, "until it succeeds")),
        (UNTIL_SUCCESS, UNHEALTHY, restart(5, "until it succeeds")),
        # never: the last run whatever its end, but for a task killed as unhealthy
        # (onUnhealthy: restart asks for it), even one that exited 0 on SIGTERM.
        (NEVER, EXIT_0, LAST),
        (NEVER, EXIT_1, LAST),
        (NEVER, KILLED, LAST),
        (NEVER, START_FAILED, LAST),
        (NEVER, UNHEALTHY, restart(5, "(unhealthy)")),
        (NEVER, UNHEALTHY_EXIT_0, restart(5, "(unhealthy)")),
    ],
)
def test_the_policy_decides_whether_a_run_is_the_last(
    policy: RestartPolicy, outcome: RunOutcome, expected: Decision
) -> None:
    assert Restarts(policy, None, RestartTiming()).after(outcome, now=100.0) == expected


def test_the_interval_is_talos_five_seconds_unless_told() -> None:
    assert DEFAULT_RESTART_INTERVAL == 5.0
    assert RestartTiming().delay(1) == 5.0


@pytest.mark.parametrize(
    ("timing", "outcomes", "delays"),
    [
        # A fixed interval, however many failures.
        (RestartTiming(2.0), [EXIT_1] * 5, [2, 2, 2, 2, 2]),
        # Backoff: doubled per consecutive failure, capped.
        (RestartTiming(1.0, 10.0), [EXIT_1] * 6, [1, 2, 4, 8, 10, 10]),
        # A failed start is a failure as an exit code is.
        (RestartTiming(1.0, 10.0), [START_FAILED, EXIT_1, START_FAILED], [1, 2, 4]),
        # A success resets the count: the next failure waits the interval again.
        (RestartTiming(1.0, 10.0), [EXIT_1, EXIT_1, EXIT_1, EXIT_0, EXIT_1], [1, 2, 4, 1, 1]),
        # A success waits the interval, never less.
        (RestartTiming(1.0, 10.0), [EXIT_0, EXIT_0], [1, 1]),
    ],
    ids=["fixed", "backoff", "failed-starts", "success-resets", "successes"],
)
def test_the_delay_backs_off_over_consecutive_failures(
    timing: RestartTiming, outcomes: list[RunOutcome], delays: list[float]
) -> None:
    restarts = Restarts(ALWAYS, None, timing)
    decisions = [restarts.after(outcome, now=float(i)) for i, outcome in enumerate(outcomes)]
    assert [d.verdict for d in decisions] == [Verdict.RESTART] * len(outcomes)
    assert [d.delay for d in decisions] == delays


@pytest.mark.parametrize(
    ("failed_at", "verdicts"),
    [
        # count 2 in 10 s: the third failure within 10 s ends it.
        ([0, 1, 2], ["restart", "restart", "limit reached"]),
        # Failures that leave the window no longer count (a window of exactly 10 s
        # excludes the failure 10 s before).
        ([0, 5, 10, 15, 20], ["restart"] * 5),
        ([0, 5, 9.5], ["restart", "restart", "limit reached"]),
    ],
    ids=["within", "spread", "edge"],
)
def test_the_restart_limit_counts_failures_in_its_window(
    failed_at: list[float], verdicts: list[str]
) -> None:
    restarts = Restarts(ALWAYS, RestartLimit(count=2, window=10.0), RestartTiming())
    decisions = [restarts.after(EXIT_1, now=at) for at in failed_at]
    assert [d.verdict.value for d in decisions] == verdicts
    assert decisions[-1].message == (
        "restart limit reached (2 failures in 10s)"
        if verdicts[-1] == "limit reached"
        else "restarting forever in 5s"
    )


def test_successes_never_count_towards_the_restart_limit() -> None:
    restarts = Restarts(ALWAYS, RestartLimit(count=1, window=60.0), RestartTiming())
    verdicts = [restarts.after(EXIT_0, now=float(i)).verdict for i in range(10)]
    assert verdicts == [Verdict.RESTART] * 10
    # One failure is within the count; the second within the window is over it.
    assert restarts.after(EXIT_1, now=10.0).verdict is Verdict.RESTART
    assert restarts.after(EXIT_1, now=11.0).verdict is Verdict.LIMIT_REACHED


def test_the_limit_is_not_consulted_for_a_last_run() -> None:
    # untilSuccess's failures before its success count; its success ends it as Finished,
    # not as "limit reached".
    restarts = Restarts(UNTIL_SUCCESS, RestartLimit(count=1, window=60.0), RestartTiming())
    assert restarts.after(EXIT_1, now=0.0).verdict is Verdict.RESTART
    assert restarts.after(EXIT_0, now=1.0) == LAST
    # never: a failure is the last run, whatever the limit.
    restarts = Restarts(NEVER, RestartLimit(count=0, window=60.0), RestartTiming())
    assert restarts.after(EXIT_1, now=0.0) == LAST


def test_each_lifecycle_begins_with_a_clean_record() -> None:
    limit = RestartLimit(count=1, window=60.0)
    first = Restarts(ALWAYS, limit, RestartTiming(1.0, 10.0))
    assert [first.after(EXIT_1, now=t).verdict for t in (0, 1)] == [
        Verdict.RESTART,
        Verdict.LIMIT_REACHED,
    ]
    # `service ID start` makes a new Restarts: the failures and the backoff are forgotten.
    again = Restarts(ALWAYS, limit, RestartTiming(1.0, 10.0))
    assert again.after(EXIT_1, now=2.0) == restart(1, "forever")
