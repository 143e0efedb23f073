"""Health checks (x-extsvc ``health``): a command run inside the container at an interval.

One ``HealthMonitor`` per run of a service: it starts when the task is Running
and ends with it. Docker's rules, which users of a health check already know:

* each check runs with ``runc exec`` and is bounded by ``timeout``: still
  running then counts as a failure;
* a success makes the service healthy (OK) at once and resets the count;
* ``retries`` consecutive failures make it unhealthy (Fail);
* failures within ``startPeriod`` of the start do not count (a slow starter
  stays "?" rather than Fail), but a success in it counts.

The first check runs as soon as the task runs, then one every ``interval``
(from the start of one check to the start of the next), so a dependent waiting
for "healthy" is not held back a whole interval. The monitor only reports:
what a change means (an event, a restart) is the runner's decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.compiler.format.servicepolicy import HealthCheck
from extsvc.executor.process.helpers import last_line
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.protocol import EXEC_KILL_WAIT, Container, ContainerRuntime, ExecResult
from extsvc.executor.service.clock import Clock

# How much of a check's output the last health message keeps.
MESSAGE_LIMIT = 200

RunCheck = Callable[[Sequence[str], float], Awaitable[ExecResult]]


def check_process(
    check: HealthCheck, spec: dict[str, Any], host: HostFacts
) -> tuple[dict[str, Any] | None, str | None]:
    """The OCI process a check with its own ``user`` or ``capabilities`` runs as, and
    the host adaptation that made to it (an event), if any; (None, None): the check
    runs as the service's own process (``runc exec`` with the container's).

    Everything but the user and the capabilities stays the service's process
    (environment, cwd, noNewPrivileges): the check sees what the daemon sees. The
    capabilities replace the service's sets, so a check may hold one the trimmed
    service lacks (CAP_DAC_OVERRIDE to reach a socket); like the service's own, only
    those in the executor's bounding set are granted.
    """
    if check.user is None and check.capabilities is None:
        return None, None
    process = dict(spec.get("process", {}), args=list(check.exec))
    if check.user is not None:
        uid, gid = check.user
        process["user"] = {"uid": uid, "gid": gid}
    adaptation = None
    if check.capabilities is not None:
        kept = [name for name in check.capabilities if name in host.bounding_capabilities]
        dropped = [name for name in check.capabilities if name not in host.bounding_capabilities]
        process["capabilities"] = {"bounding": kept, "effective": kept, "permitted": kept}
        if dropped:
            adaptation = (
                "host adaptation: not granting the health check "
                + ", ".join(dropped)
                + " (not in the executor's bounding set)"
            )
    return process, adaptation


class Health(Enum):
    """The HEALTH column of `extsvc service`, as `talosctl service` shows it."""

    UNKNOWN = "?"
    OK = "OK"
    FAIL = "Fail"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


class HealthMonitor:
    def __init__(
        self,
        check: HealthCheck,
        run_check: RunCheck,
        clock: Clock,
        on_change: Callable[[HealthMonitor], None],
    ) -> None:
        self.check = check
        self._run_check = run_check
        self._clock = clock
        self._on_change = on_change
        self.health = Health.UNKNOWN
        self.last_message = ""
        self.consecutive_failures = 0
        self._started = clock.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._started = self._clock.monotonic()
        self._task = asyncio.create_task(self._loop(), name="health check")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        # Not only the cancellation ends it: Python 3.11's wait_for (in probe and in the
        # runtime's calls) returns a result that arrives with the cancellation and drops
        # the cancellation; the loop would then sleep on and stop() wait for ever (a
        # shutdown stuck in HealthMonitor.stop).
        while not self._stopping:
            began = self._clock.monotonic()
            result = await self.probe()
            if self._stopping:
                return
            self.record(result)
            spent = self._clock.monotonic() - began
            await self._clock.sleep(max(0.0, self.check.interval - spent))

    async def probe(self) -> CheckResult:
        """Run the check once, bounded by its timeout (a hung `runc exec` included)."""
        timeout = self.check.timeout
        began = self._clock.monotonic()
        try:
            # The runtime kills the command at the timeout, which may take it up to
            # EXEC_KILL_WAIT (runc naming the check's process late): a bound below that
            # cancelled the kill and left the check running, one more per interval. The
            # extra second bounds a runtime that fails to return even so.
            result = await asyncio.wait_for(
                asyncio.ensure_future(self._run_check(self.check.exec, timeout)),
                timeout + EXEC_KILL_WAIT + 1.0,
            )
        except TimeoutError:
            return CheckResult(False, f"timed out after {format_duration(timeout)}")
        except OSError as error:
            return CheckResult(False, f"cannot run the check: {error.strerror or error}")
        output = _shortened(last_line(result.output))
        if result.exit_code == 0:
            return CheckResult(True, output)
        if self._clock.monotonic() - began >= timeout:
            # The runtime killed it at the timeout (whatever exit status that left).
            return CheckResult(False, f"timed out after {format_duration(timeout)}")
        detail = f": {output}" if output else ""
        return CheckResult(False, f"exit code {result.exit_code}{detail}")

    def record(self, result: CheckResult) -> None:
        """Fold one result into the health; report a change of health."""
        before = self.health
        self.last_message = result.message
        if result.ok:
            self.consecutive_failures = 0
            self.health = Health.OK
        elif self._clock.monotonic() - self._started >= self.check.start_period:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.check.retries:
                self.health = Health.FAIL
        if self.health is not before:
            self._on_change(self)


def monitor_run(
    check: HealthCheck,
    container: Container,
    spec: dict[str, Any],
    host: HostFacts,
    runtime: ContainerRuntime,
    clock: Clock,
    on_change: Callable[[HealthMonitor], None],
) -> tuple[HealthMonitor, str | None]:
    """A started monitor of one run's health (its checks run in ``container``), and the
    host adaptation made to the checks' process (``check_process``), if any."""
    process, adaptation = check_process(check, spec, host)

    def run_check(argv: Sequence[str], timeout: float) -> Awaitable[ExecResult]:
        return runtime.exec(container, argv, timeout, process)

    monitor = HealthMonitor(check, run_check, clock, on_change)
    monitor.start()
    return monitor, adaptation


def _shortened(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."
