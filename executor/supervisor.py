"""All services of a plan: start them together, stop them dependents-first, answer control.

Every service starts its lifecycle at once; dependency order comes from each
service waiting for its conditions, so independent services start in parallel
and a chain starts in order. A whole-plan shutdown stops each service only after
every service that depends on it has stopped.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import Plan, ServicePlan
from extsvc.executor.adapt import HostFacts
from extsvc.executor.clock import Clock
from extsvc.executor.conditions import HostProbes, conditions_for
from extsvc.executor.errors import UnknownServiceError
from extsvc.executor.hostservices import ReadinessRule
from extsvc.executor.logs import Console, ServiceLog
from extsvc.executor.runner import RunnerSettings, ServiceRunner, StateBoard
from extsvc.executor.runtime import ContainerRuntime
from extsvc.executor.states import Event, ServiceState


class Supervisor:
    def __init__(
        self,
        plan: Plan,
        runtime: ContainerRuntime,
        clock: Clock,
        host: HostFacts,
        settings: RunnerSettings,
        log_dir: Path,
        console: Console | None = None,
        host_services: dict[str, ReadinessRule] | None = None,
        has_configuration: Callable[[str], bool] = lambda name: False,
        configuration_problem: Callable[[str], str | None] = lambda name: None,
        probes: HostProbes | None = None,
        prepare_spec: Callable[[ServicePlan], dict[str, Any]] | None = None,
        on_event: Callable[[str, Event], None] | None = None,
    ) -> None:
        self.plan = plan
        self.board = StateBoard()
        self.runners: dict[str, ServiceRunner] = {}
        for service in plan.services.values():
            self.runners[service.id] = ServiceRunner(
                service=service,
                runtime=runtime,
                clock=clock,
                host=host,
                log=ServiceLog(service.id, log_dir, console if service.log_to_console else None),
                conditions=conditions_for(
                    service,
                    self._is_up,
                    host_services or {},
                    has_configuration,
                    configuration_problem,
                    probes,
                    has_health_check=lambda dep: plan.services[dep].policy.health is not None,
                ),
                board=self.board,
                settings=settings,
                on_event=on_event,
                prepare_spec=prepare_spec,
                dependency_gave_up=functools.partial(self._dependency_gave_up, service),
            )

    def _is_up(self, service_id: str) -> bool:
        runner = self.runners.get(service_id)
        return runner is not None and runner.is_up()

    def _dependency_gave_up(self, service: ServicePlan) -> str | None:
        """Why a dependency of ``service`` will never come up, or None while it may.

        Only an optional service (x-extsvc ``optional``) gives up for its dependents:
        when it has failed, or was itself skipped for the same reason. A required
        service that failed keeps its dependents waiting, as in Talos.
        """
        for dependency in service.depends.services:
            runner = self.runners.get(dependency)
            if runner is None:
                continue
            if runner.gave_up_reason is not None:
                return f'dependency "{dependency}" was skipped ({runner.gave_up_reason})'
            if runner.service.policy.optional and runner.state is ServiceState.FAILED:
                last = runner.events.last
                why = f": {last.message}" if last is not None else ""
                return f'optional dependency "{dependency}" failed{why}'
        return None

    def runner(self, service_id: str) -> ServiceRunner:
        try:
            return self.runners[service_id]
        except KeyError:
            known = ", ".join(sorted(self.runners)) or "none"
            raise UnknownServiceError(
                f"unknown service {service_id!r} (services: {known})"
            ) from None

    def start_all(self) -> None:
        for level in self.plan.levels:
            for service_id in level:
                self.runners[service_id].start()

    async def shutdown(self) -> None:
        """Stop every service, each after all of its dependents (reverse dependency order)."""
        stopped: dict[str, asyncio.Future[None]] = {
            service_id: asyncio.get_running_loop().create_future() for service_id in self.runners
        }

        async def stop_after_dependents(service_id: str) -> None:
            try:
                dependents = self.plan.dependents_of(service_id)
                await asyncio.gather(*(stopped[d] for d in dependents))
                await self.runners[service_id].stop()
            finally:
                stopped[service_id].set_result(None)

        await asyncio.gather(*(stop_after_dependents(s) for s in self.runners))
        for runner in self.runners.values():
            runner.log.close()
