"""A scripted container runtime: runc's lifecycle (``runtime.protocol``) without runc.

One runtime for both users of scripted runs: ``extsvc plan --simulate`` turns the
facts file's runs into scripts, policy tests write them directly. Each service
has a list of ``Script``s, one per run; the last one repeats. A run ends as its
script says, on the runtime's clock (``simulate.clock``), so simulated and tested
time is the one the supervisor waits on. What a real runtime would be asked is
recorded (creates, starts, health checks with their times, specs, cleanups) for
tests to assert on.

Invariants, as runc keeps them: a service has at most one container between a
create and its cleanup; a container starts at most once; ``cleanup`` ends what is
left (as SIGKILL does) and may be called any number of times. A script is used up
by the run it describes: by its start, failed or not, or by a create it makes fail;
a container created ahead and discarded unstarted leaves it to the next create.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.errors import LaunchError
from extsvc.executor.runtime.protocol import ExecResult, OutputSink
from extsvc.executor.simulate.clock import VirtualClock


@dataclass(frozen=True)
class Script:
    """One run of a scripted container."""

    exit_code: int | None = 0  # None: runs until signalled
    duration: float = 0.0  # seconds from its start to its exit
    lines: tuple[str, ...] = ()  # written at its start
    ignore_sigterm: bool = False
    launch_error: str | None = None  # `create` fails, after writing ``lines``
    start_error: str | None = None  # `create` works, `start` fails


# A service without scripts runs until it is stopped.
UNTIL_STOPPED = Script(exit_code=None)


class ScriptedContainer:
    """A container whose init does what its script says; ends on SIGKILL, and on
    SIGTERM unless the script ignores it (the runner sends no other signal)."""

    def __init__(self, container_id: str, pid: int, script: Script) -> None:
        self.id = container_id
        self.pid = pid
        self.script = script
        self.signals: list[int] = []
        self.started = False
        self.deleted = False
        self._exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.ignore_sigterm = script.ignore_sigterm
        # The wait for a scripted exit: it ends with the container, however that ends
        # (no task outlives its container, nor the loop of a simulation).
        self.exiting: asyncio.Task[None] | None = None

    def finish(self, code: int | None) -> None:
        if not self._exited.done():
            self._exited.set_result(code)
        if self.exiting is not None and self.exiting is not asyncio.current_task():
            self.exiting.cancel()

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL or (signum == signal.SIGTERM and not self.ignore_sigterm):
            self.finish(128 + signum)  # as a shell reports a death by signal

    async def wait(self) -> int | None:
        return await asyncio.shield(self._exited)


@dataclass
class ScriptedRuntime:
    """The ContainerRuntime of scripted runs: create (stopped init), start, signal,
    exec, cleanup, each recorded with the clock's time."""

    clock: VirtualClock
    # service id -> its runs, in order; the last one repeats.
    scripts: dict[str, list[Script]] = field(default_factory=dict)
    # (service id, clock time) of each create and each start
    creates: list[tuple[str, float]] = field(default_factory=list)
    launches: list[tuple[str, float]] = field(default_factory=list)
    cleanups: list[str] = field(default_factory=list)
    containers: list[ScriptedContainer] = field(default_factory=list)
    specs: list[dict[str, Any]] = field(default_factory=list)
    # Runs that end after a while, each waiting on the clock for its exit.
    pending: set[asyncio.Task[None]] = field(default_factory=set)
    _sinks: dict[str, OutputSink] = field(default_factory=dict)
    # Each service's containers not cleaned up yet (a simulation creates thousands).
    _live: dict[str, list[ScriptedContainer]] = field(default_factory=dict)
    # What a health check (`exec`) in each service's container answers now; None: it
    # hangs until the timeout kills it. Tests change it to make a service (un)healthy.
    health: dict[str, ExecResult | None] = field(default_factory=dict)
    execs: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)
    # The process each exec ran as (None: the container's own).
    exec_processes: list[dict[str, Any] | None] = field(default_factory=list)
    # The PID given out last: each container's init gets the next one.
    last_pid: int = 100
    # Whether calls are recorded (creates ... cleanups) for tests to assert on; a
    # simulation keeps none: a week of crash loops is a hundred thousand runs.
    records: bool = True

    def launched(self, service_id: str) -> int:
        """How many times ``service_id`` was started."""
        return sum(1 for launched, _ in self.launches if launched == service_id)

    def created(self, service_id: str) -> int:
        return sum(1 for created, _ in self.creates if created == service_id)

    def live(self, service_id: str) -> list[ScriptedContainer]:
        """Containers of ``service_id`` not yet removed by cleanup (created or running)."""
        return list(self._live.get(service_id, ()))

    def checks(self, service_id: str) -> list[float]:
        """When each health check of ``service_id`` ran."""
        return [at for checked, _, at in self.execs if checked == service_id]

    def _next_script(self, service_id: str) -> Script:
        return (self.scripts.get(service_id) or [UNTIL_STOPPED])[0]

    def _use_up(self, service_id: str, script: Script) -> None:
        """The run ``script`` describes happened: the next create gets the next script."""
        queue = self.scripts.get(service_id) or []
        if len(queue) > 1 and queue[0] is script:
            queue.pop(0)

    async def create(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> ScriptedContainer:
        assert not self.live(service.id), f"{service.id}: created twice without cleanup"
        script = self._next_script(service.id)
        if self.records:
            self.specs.append(spec)
            self.creates.append((service.id, self.clock.time))
        if script.launch_error is not None:
            self._use_up(service.id, script)
            for line in script.lines:
                on_output(line.encode(), self.clock.wall())
            raise LaunchError(script.launch_error)
        self.last_pid += 1
        container = ScriptedContainer(service.id, self.last_pid, script)
        self._sinks[service.id] = on_output
        if self.records:
            self.containers.append(container)
        self._live.setdefault(service.id, []).append(container)
        return container

    async def start(self, container: Any) -> None:
        assert isinstance(container, ScriptedContainer) and not container.deleted
        assert not container.started, f"{container.id}: started twice"
        script = container.script
        self._use_up(container.id, script)
        if script.start_error is not None:
            raise LaunchError(script.start_error)
        container.started = True
        if self.records:
            self.launches.append((container.id, self.clock.time))
        for line in script.lines:
            self._sinks[container.id](line.encode(), self.clock.wall())
        if script.exit_code is None:
            return
        code = script.exit_code
        if script.duration == 0:
            container.finish(code)
            return

        async def exit_later() -> None:
            await self.clock.sleep(script.duration)
            container.finish(code)

        container.exiting = asyncio.create_task(exit_later())
        self.pending.add(container.exiting)
        container.exiting.add_done_callback(self.pending.discard)

    async def exec(
        self,
        container: Any,
        argv: Sequence[str],
        timeout: float,
        process: dict[str, Any] | None = None,
    ) -> ExecResult:
        if self.records:
            self.execs.append((container.id, tuple(argv), self.clock.time))
            self.exec_processes.append(process)
        result = self.health.get(container.id, ExecResult(0, ""))
        if result is None:
            await self.clock.sleep(timeout)
            return ExecResult(-9, "(timed out)")
        return result

    async def cleanup(self, service: ServicePlan) -> None:
        if self.records:
            self.cleanups.append(service.id)
        for container in self._live.pop(service.id, ()):
            container.deleted = True
            container.finish(128 + signal.SIGKILL)
