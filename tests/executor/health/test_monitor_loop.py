"""The health monitor's own loop (executor.service.health), without a runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from extsvc.compiler.format.servicepolicy import HealthCheck, OnUnhealthy
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.service.clock import SystemClock
from extsvc.executor.service.health import HealthMonitor

CHECK = HealthCheck(
    exec=("true",),
    interval=0.01,
    timeout=1.0,
    retries=1,
    start_period=0.0,
    on_unhealthy=OnUnhealthy.RESTART,
)


def test_stop_ends_the_loop_when_a_check_ends_as_it_is_cancelled() -> None:
    """Python 3.11's wait_for returns a result that arrives with a cancellation and drops
    the cancellation: the monitor then slept on, and its stop (so the service's stop and
    the executor's shutdown) waited for ever, as the soak found (SIGUSR1 showed it)."""
    entered: asyncio.Queue[asyncio.Future[ExecResult]] = asyncio.Queue()

    async def run_check(argv: Sequence[str], timeout: float) -> ExecResult:
        answer: asyncio.Future[ExecResult] = asyncio.get_running_loop().create_future()
        await entered.put(answer)
        return await answer

    async def scenario() -> None:
        monitor = HealthMonitor(CHECK, run_check, SystemClock(), lambda _: None)
        for _ in range(3):  # and it starts again after a stop
            monitor.start()
            answer = await entered.get()
            answer.set_result(ExecResult(0, "ok"))
            await asyncio.sleep(0)  # the check is over; the monitor has not seen it yet
            await asyncio.wait_for(monitor.stop(), 2)

    asyncio.run(scenario())


def test_the_runtime_has_its_kill_wait_before_the_probe_gives_up_on_it() -> None:
    """At a check's timeout the runtime may wait for `runc exec` to name the check's
    process (EXEC_KILL_WAIT) to kill it: the probe's own bound was the timeout + 1 s, and
    cancelling the runtime there left every late-named check running."""
    check = replace(CHECK, timeout=0.1)
    finished: list[bool] = []

    async def run_check(argv: Sequence[str], timeout: float) -> ExecResult:
        await asyncio.sleep(timeout + 1.5)  # the check's process named 1.5 s late, killed
        finished.append(True)
        return ExecResult(-9, "(timed out)")

    async def scenario() -> str:
        monitor = HealthMonitor(check, run_check, SystemClock(), lambda _: None)
        return (await monitor.probe()).message

    assert asyncio.run(scenario()) == "timed out after 100ms"
    assert finished == [True]
