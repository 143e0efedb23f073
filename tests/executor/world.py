"""The fake world the policy tests share: a Supervisor over the shipped scripted runtime
and virtual clock (extsvc.executor.simulate), its plan from tests.executor.fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES as CAPABILITY_NAMES
from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.daemon.control import SOCKET_NAME, ControlClient, ControlHandler, ControlServer
from extsvc.executor.daemon.loopstats import LoopStats
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import ServiceState
from extsvc.executor.simulate.clock import settle
from extsvc.executor.simulate.runtime import Script, ScriptedRuntime
from extsvc.executor.supervise.supervisor import NoConfiguration, Supervisor, SupervisorSettings
from tests.executor.fakes import make_clock, make_plan, make_service

FULL_HOST = HostFacts(bounding_capabilities=frozenset(CAPABILITY_NAMES), can_lower_oom_score=True)
SETTINGS = RunnerSettings(
    restart=RestartTiming(interval=5.0), stop_timeout=10.0, check_interval=1.0
)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    def wrapper() -> None:
        asyncio.run(test())

    wrapper.__name__ = test.__name__
    return wrapper


class Documents(NoConfiguration):
    """Configuration as a test scripts it: which documents exist, what a start adds
    (looked at on the check interval: nothing announces a change)."""

    watched = False

    def __init__(
        self,
        has: Callable[[str], bool] | None,
        apply: Callable[[ServicePlan], dict[str, Any]] | None,
    ) -> None:
        self._has = has or super().has
        self._apply = apply or super().apply

    def has(self, name: str) -> bool:
        return self._has(name)

    def apply(self, service: ServicePlan) -> dict[str, Any]:
        return self._apply(service)


class World:
    """A supervisor over fakes, for one test."""

    def __init__(
        self,
        tmp: Path,
        *services: Any,
        host: HostFacts = FULL_HOST,
        runtime: type[ScriptedRuntime] = ScriptedRuntime,
        **kw: Any,
    ) -> None:
        self.clock = make_clock()
        self.runtime = runtime(self.clock, kw.pop("scripts", {}))
        self.supervisor = Supervisor(
            make_plan(*services),
            self.runtime,
            self.clock,
            SupervisorSettings(host, kw.pop("settings", SETTINGS), log_dir=tmp),
            configuration=kw.pop("configuration", None)
            or Documents(kw.pop("has_configuration", None), kw.pop("prepare_spec", None)),
            **kw,
        )

    def state(self, service_id: str) -> ServiceState:
        return self.supervisor.runners[service_id].state

    def messages(self, service_id: str) -> list[str]:
        return [e.message for e in self.supervisor.runners[service_id].events]


async def with_server(
    tmp: Path,
    body: Callable[[ControlClient], Any],
    holder: list[Supervisor] | None = None,
    measured: bool = False,
) -> Any:
    """``body(client)`` in a thread, against a control server over fakes; ``measured``:
    the loop is timed (executor.daemon.loopstats) as in the daemon."""
    stats = LoopStats.install(asyncio.get_running_loop()) if measured else None
    clock = make_clock()
    runtime = ScriptedRuntime(
        clock, {"ext-a": [Script(None, lines=("first", "second"))], "ext-b": [Script(0)]}
    )
    plan = make_plan(make_service("a"), make_service("b", "never"))
    supervisor = Supervisor(
        plan, runtime, clock, SupervisorSettings(FULL_HOST, SETTINGS, log_dir=tmp / "logs")
    )
    if holder is not None:
        holder.append(supervisor)
    server = ControlServer(tmp / SOCKET_NAME, ControlHandler(supervisor, loop_stats=stats))
    await server.start()
    supervisor.start_all()
    await settle()
    try:
        return await asyncio.get_running_loop().run_in_executor(None, body, ControlClient(tmp))
    finally:
        await server.close()
        await supervisor.shutdown()
