"""A fake clock and a fake container runtime: policy tests without runc or real time."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import (
    Dependencies,
    Plan,
    RestartPolicy,
    ServicePlan,
    ServicePolicy,
)
from extsvc.executor.errors import LaunchError
from extsvc.executor.runtime.protocol import ExecResult, OutputSink


async def settle(rounds: int = 50) -> None:
    """Let every ready task run until the loop has nothing left to do now."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """``time`` is the monotonic reading, which ``sleep`` and ``advance`` move; the wall
    clock is ``time`` plus an offset that ``step_wall`` changes (time sync at boot), and
    boottime is ``time`` plus ``suspended``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.time = start
        self.wall_offset = 1_700_000_000.0 - start
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
        while True:
            due = [e for e in self._sleepers if e[0] <= target and not e[1].done()]
            if not due:
                break
            deadline = min(e[0] for e in due)
            self.time = max(self.time, deadline)
            for entry in due:
                if entry[0] == deadline:
                    entry[1].set_result(None)
            await settle()
        self.time = target
        await settle()


@dataclass
class Script:
    """One run of a fake container."""

    exit_code: int | None = 0  # None: runs until signalled
    duration: float = 0.0
    lines: tuple[str, ...] = ()
    ignore_sigterm: bool = False
    launch_error: str | None = None  # `create` fails, after writing ``lines``
    start_error: str | None = None  # `create` works, `start` fails


class FakeContainer:
    def __init__(self, container_id: str, pid: int, script: Script) -> None:
        self.id = container_id
        self.pid = pid
        self.script = script
        self.signals: list[int] = []
        self.started = False
        self.deleted = False
        self._exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.ignore_sigterm = script.ignore_sigterm

    def finish(self, code: int | None) -> None:
        if not self._exited.done():
            self._exited.set_result(code)

    def signal(self, signum: int) -> None:
        self.signals.append(signum)
        if signum == signal.SIGKILL or (signum == signal.SIGTERM and not self.ignore_sigterm):
            self.finish(128 + signum)

    async def wait(self) -> int | None:
        return await asyncio.shield(self._exited)


@dataclass
class FakeRuntime:
    """runc's lifecycle without runc: create (stopped init), start, signal, cleanup."""

    clock: FakeClock
    scripts: dict[str, list[Script]] = field(default_factory=dict)
    # (service id, clock time) of each create and each start
    creates: list[tuple[str, float]] = field(default_factory=list)
    launches: list[tuple[str, float]] = field(default_factory=list)
    cleanups: list[str] = field(default_factory=list)
    containers: list[FakeContainer] = field(default_factory=list)
    specs: list[dict[str, Any]] = field(default_factory=list)
    pending: set[asyncio.Future[None]] = field(default_factory=set)
    _sinks: dict[str, OutputSink] = field(default_factory=dict)
    # What a health check (`exec`) in each service's container answers now; None: it
    # hangs until the timeout kills it. Tests change it to make a service (un)healthy.
    health: dict[str, ExecResult | None] = field(default_factory=dict)
    execs: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)
    # The process each exec ran as (None: the container's own).
    exec_processes: list[dict[str, Any] | None] = field(default_factory=list)
    _next_pid: int = 100

    def launched(self, service_id: str) -> int:
        """How many times ``service_id`` was started."""
        return sum(1 for launched, _ in self.launches if launched == service_id)

    def created(self, service_id: str) -> int:
        return sum(1 for created, _ in self.creates if created == service_id)

    def live(self, service_id: str) -> list[FakeContainer]:
        """Containers of ``service_id`` not yet removed by cleanup (created or running)."""
        return [c for c in self.containers if c.id == service_id and not c.deleted]

    async def create(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> FakeContainer:
        assert not self.live(service.id), f"{service.id}: created twice without cleanup"
        queue = self.scripts.get(service.id) or [Script(exit_code=None)]
        script = queue.pop(0) if len(queue) > 1 else queue[0]
        self.specs.append(spec)
        self.creates.append((service.id, self.clock.time))
        if script.launch_error is not None:
            for line in script.lines:
                on_output(line.encode(), self.clock.time)
            raise LaunchError(script.launch_error)
        self._next_pid += 1
        container = FakeContainer(service.id, self._next_pid, script)
        self._sinks[service.id] = on_output
        self.containers.append(container)
        return container

    async def start(self, container: Any) -> None:
        assert isinstance(container, FakeContainer) and not container.deleted
        assert not container.started, f"{container.id}: started twice"
        script = container.script
        if script.start_error is not None:
            raise LaunchError(script.start_error)
        container.started = True
        self.launches.append((container.id, self.clock.time))
        for line in script.lines:
            self._sinks[container.id](line.encode(), self.clock.time)
        if script.exit_code is not None:
            code = script.exit_code
            if script.duration == 0:
                container.finish(code)
                return

            async def exit_later() -> None:
                await self.clock.sleep(script.duration)
                container.finish(code)

            self.pending.add(asyncio.ensure_future(exit_later()))

    async def exec(
        self,
        container: Any,
        argv: Sequence[str],
        timeout: float,
        process: dict[str, Any] | None = None,
    ) -> ExecResult:
        self.execs.append((container.id, tuple(argv), self.clock.time))
        self.exec_processes.append(process)
        result = self.health.get(container.id, ExecResult(0, ""))
        if result is None:
            await self.clock.sleep(timeout)
            return ExecResult(-9, "(timed out)")
        return result

    def checks(self, service_id: str) -> list[float]:
        """When each health check of ``service_id`` ran."""
        return [at for checked, _, at in self.execs if checked == service_id]

    async def cleanup(self, service: ServicePlan) -> None:
        self.cleanups.append(service.id)
        for container in self.live(service.id):
            container.deleted = True
            container.finish(128 + signal.SIGKILL)


def make_service(
    name: str,
    restart: str = "always",
    services: tuple[str, ...] = (),
    host_services: tuple[str, ...] = (),
    paths: tuple[str, ...] = (),
    log_to_console: bool = False,
    spec: dict[str, Any] | None = None,
    policy: ServicePolicy | None = None,
) -> ServicePlan:
    return ServicePlan(
        id=f"ext-{name}",
        name=name,
        source=f"{name}.yaml",
        bundle_dir=Path("/nonexistent") / name,
        digest="sha256:" + "0" * 64,
        rootfs=f"/usr/local/lib/containers/{name}",
        restart=RestartPolicy(restart),
        log_to_console=log_to_console,
        level=0,
        depends=Dependencies(services=services, host_services=host_services, paths=paths),
        mount_sources=(),
        spec=spec if spec is not None else {"process": {"args": ["/bin/true"]}},
        policy=policy or ServicePolicy(),
    )


def make_plan(*services: ServicePlan) -> Plan:
    """A Plan with topological levels computed from the service dependencies."""
    by_id = {s.id: s for s in services}
    levels: list[tuple[str, ...]] = []
    placed: set[str] = set()
    while len(placed) < len(by_id):
        level = tuple(
            sorted(
                sid
                for sid, s in by_id.items()
                if sid not in placed and all(d in placed for d in s.depends.services)
            )
        )
        assert level, "dependency cycle in test plan"
        levels.append(level)
        placed.update(level)
    return Plan(
        path=Path("/nonexistent/plan.json"),
        compiler_version="test",
        arch="amd64",
        rootfs_base="/usr/local/lib/containers",
        levels=tuple(levels),
        services=by_id,
    )
