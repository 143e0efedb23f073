"""All services of a plan: start them together, stop them dependents-first, answer control.

Every service starts its lifecycle at once; dependency order comes from each
service waiting for its conditions, so independent services start in parallel
and a chain starts in order. A whole-plan shutdown stops each service only after
every service that depends on it has stopped.

A reload swaps the plan: services whose plan entry (bundle digest included)
changed are restarted with the new entry, new ones started, removed ones
stopped (dependents first); the others are not touched (same PID).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from extsvc.compiler.format.plan import Plan, ServicePlan
from extsvc.compiler.format.serviceids import service_id as id_of_name
from extsvc.executor.host.readiness import ReadinessRule
from extsvc.executor.logs.journal import Journal
from extsvc.executor.logs.servicelog import Console, ServiceLog
from extsvc.executor.options import DEFAULT_LOG_ROTATION, LogRotation
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.protocol import ContainerRuntime
from extsvc.executor.service.board import StateBoard
from extsvc.executor.service.clock import Clock
from extsvc.executor.service.conditions import ConfigurationSource, HostProbes, conditions_for
from extsvc.executor.service.context import RunnerContext, RunnerSettings
from extsvc.executor.service.ids import resolve_id
from extsvc.executor.service.runner import ServiceRunner
from extsvc.executor.service.states import Event, ServiceState


@dataclass
class ReloadReport:
    restarted: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        parts = [
            f"{what} {', '.join(ids)}"
            for what, ids in (
                ("restarted", self.restarted),
                ("started", self.started),
                ("stopped", self.stopped),
            )
            if ids
        ]
        parts.append(f"{len(self.unchanged)} unchanged")
        return "reloaded: " + "; ".join(parts)


def entry_changed(old: ServicePlan, new: ServicePlan) -> bool:
    """The plan entry differs (bundle digest, restart, dependencies, ...). The level is
    left out: it moves when another service is added, which changes nothing here."""
    return dataclasses.replace(old, level=new.level) != new


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Configuration(ConfigurationSource, Protocol):
    """The run-time configuration of services (ExtensionServiceConfig documents): what
    their conditions ask (ConfigurationSource) and what a start adds to the spec."""

    def apply(self, service: ServicePlan) -> dict[str, Any]:
        """The compiled spec plus what only exists at start (raises LaunchError)."""
        ...


class NoConfiguration:
    """No configuration documents: every spec runs as compiled; a service waiting for
    a document waits for ever (nothing will announce one, so it is not polled)."""

    watched = True

    def has(self, name: str) -> bool:
        return False

    def problem(self, name: str) -> str | None:
        return None

    def apply(self, service: ServicePlan) -> dict[str, Any]:
        return service.spec


@dataclass(frozen=True)
class SupervisorSettings:
    """What the services of any plan run with: the host's facts and the daemon's options.
    A reload changes the plan, never these."""

    host: HostFacts
    runner: RunnerSettings
    log_dir: Path
    # False: the lines go to journald only (run --log-target journald).
    log_files: bool = True
    log_rotation: LogRotation = DEFAULT_LOG_ROTATION
    # The host-services file (executor.host.readiness): how a host service is "up".
    host_services: Mapping[str, ReadinessRule] = field(default_factory=dict)
    # How host conditions look at the host (`plan --simulate` answers from facts).
    probes: HostProbes = field(default_factory=HostProbes)


class Supervisor:
    def __init__(
        self,
        plan: Plan,
        runtime: ContainerRuntime,
        clock: Clock,
        settings: SupervisorSettings,
        *,
        console: Console | None = None,
        journal: Journal | None = None,
        configuration: Configuration | None = None,
        on_event: Callable[[str, Event], None] | None = None,
    ) -> None:
        self.plan = plan
        # The plan file as loaded, to tell when the one on disk differs ("changed on disk").
        self.plan_digest = file_digest(plan.path)
        self.board = StateBoard()
        self.runners: dict[str, ServiceRunner] = {}
        # Services stopped through the control socket: a reload leaves them stopped.
        self.held: set[str] = set()
        self.stopping = False
        # Set by kill_now(): the shutdown no longer waits, neither for graces nor for order.
        self._killing = asyncio.Event()
        self._listeners: dict[str, set[asyncio.Queue[Event]]] = {}
        self._on_event = on_event
        self._settings = settings
        self._console = console
        self._journal = journal
        self._configuration: Configuration = configuration or NoConfiguration()
        # Restarts begun by configuration_changed (referenced until they end).
        self._restarts: set[asyncio.Task[None]] = set()
        self._runner_context = RunnerContext(
            runtime,
            clock,
            settings.host,
            self.board,
            settings.runner,
            on_event=self._event,
            prepare_spec=self._configuration.apply,
        )
        for service in plan.services.values():
            self.runners[service.id] = self._make_runner(service)

    def _make_runner(self, service: ServicePlan) -> ServiceRunner:
        settings = self._settings
        log = ServiceLog(
            service.id,
            settings.log_dir,
            self._console if service.log_to_console else None,
            settings.log_rotation.max_bytes,
            settings.log_rotation.backups,
            journal=self._journal,
            files=settings.log_files,
        )
        return ServiceRunner(
            service,
            log,
            self._conditions(service),
            self._runner_context,
            dependency_gave_up=functools.partial(self._gave_up_for, service.id),
        )

    def _conditions(self, service: ServicePlan) -> list[Any]:
        return conditions_for(
            service,
            self._is_up,
            self._settings.host_services,
            self._configuration,
            self._settings.probes,
            has_health_check=lambda dep: self.plan.services[dep].policy.health is not None,
        )

    def configuration_changed(self, names: Collection[str]) -> None:
        """Configuration documents changed (supervise.configwatch decides which, and
        when): each service of ``names`` still active restarts to take its new document,
        and every service waiting for a document looks again (their condition is not
        polled: ``Configuration.watched``)."""
        for name in names:
            runner = self.runners.get(id_of_name(name))
            if runner is not None and runner.active:
                task = asyncio.create_task(runner.restart())
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)
        self.board.notify()

    def _gave_up_for(self, service_id: str) -> str | None:
        # The runner's service as it is now: a reload may have changed its dependencies.
        return self._dependency_gave_up(self.runners[service_id].service)

    def _event(self, service_id: str, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(service_id, event)
        for queue in self._listeners.get(service_id, ()):
            queue.put_nowait(event)

    def listen(self, service_id: str) -> asyncio.Queue[Event]:
        """Every event of ``service_id`` from now on (control: start/restart waits)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listeners.setdefault(service_id, set()).add(queue)
        return queue

    def unlisten(self, service_id: str, queue: asyncio.Queue[Event]) -> None:
        self._listeners.get(service_id, set()).discard(queue)

    def plan_changed_on_disk(self) -> bool:
        return file_digest(self.plan.path) != self.plan_digest

    def all_began(self) -> bool:
        """Every service has begun its first attempt (left Initialized): sd_notify READY."""
        return all(r.state is not ServiceState.INITIALIZED for r in self.runners.values())

    async def wait_all_began(self) -> None:
        while True:
            changed = self.board.next_change()
            if self.all_began():
                return
            await changed.wait()

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
        """The runner of ``service_id``, also given as a bare name (``hello`` for ext-hello)."""
        return self.runners[resolve_id(service_id, self.runners)]

    def start_all(self) -> None:
        for level in self.plan.levels:
            for service_id in level:
                self.runners[service_id].start()

    async def shutdown(self) -> None:
        """Stop every service, each after all of its dependents (reverse dependency order)."""
        self.stopping = True
        await self._stop_dependents_first(set(self.runners))
        for runner in self.runners.values():
            runner.log.close()

    @property
    def killing(self) -> bool:
        return self._killing.is_set()

    def kill_now(self) -> None:
        """Cut every stop short: SIGKILL at once, whatever the grace and the order (the
        executor's third Ctrl-C). Each service is still cleaned up as in any stop."""
        self._killing.set()
        for runner in self.runners.values():
            runner.kill_now()

    def stop_status(self) -> list[str]:
        """What a shutdown still waits for: one line per service not stopped yet."""
        lines = []
        for service_id, runner in sorted(self.runners.items()):
            if not runner.active:
                continue
            waiting_for = [d for d in self.plan.dependents_of(service_id) if self._active(d)]
            if waiting_for and runner.state is not ServiceState.STOPPING:
                lines.append(f"{service_id}: waits for {', '.join(waiting_for)} to stop first")
                continue
            pid = f" (PID {runner.container.pid})" if runner.container is not None else ""
            lines.append(f"{service_id}{pid}: {runner.stop_status()}")
        return lines

    def _active(self, service_id: str) -> bool:
        runner = self.runners.get(service_id)
        return runner is not None and runner.active

    async def _stop_dependents_first(self, service_ids: set[str]) -> None:
        """Stop ``service_ids``, each after those of them that depend on it (current plan)."""
        stopped: dict[str, asyncio.Future[None]] = {
            service_id: asyncio.get_running_loop().create_future() for service_id in service_ids
        }

        async def stop_after_dependents(service_id: str) -> None:
            try:
                dependents = [
                    stopped[d] for d in self.plan.dependents_of(service_id) if d in stopped
                ]
                if dependents:
                    # All of them stopped, or the order given up for a kill (kill_now). Not
                    # gather: cancelling it would cancel the other services' futures.
                    all_stopped = asyncio.ensure_future(asyncio.wait(dependents))
                    killing = asyncio.ensure_future(self._killing.wait())
                    await asyncio.wait({all_stopped, killing}, return_when=asyncio.FIRST_COMPLETED)
                    all_stopped.cancel()
                    killing.cancel()
                await self.runners[service_id].stop()
            finally:
                stopped[service_id].set_result(None)

        await asyncio.gather(*(stop_after_dependents(s) for s in service_ids))

    async def reload(self, plan: Plan) -> ReloadReport:
        """Apply ``plan`` (already loaded and validated): only what changed is touched."""
        old, new = self.plan.services, plan.services
        report = ReloadReport(
            restarted=sorted(i for i in old if i in new and entry_changed(old[i], new[i])),
            started=sorted(i for i in new if i not in old),
            stopped=sorted(i for i in old if i not in new),
        )
        report.unchanged = sorted(i for i in old if i in new and i not in report.restarted)
        # Removed and changed services stop in the old plan's order (dependents first).
        was_active = {i for i in report.restarted if self.runners[i].active}
        await self._stop_dependents_first({*report.stopped, *report.restarted})
        self.plan = plan
        self.plan_digest = file_digest(plan.path)
        for service_id in report.stopped:
            self.runners.pop(service_id).log.close()
            self.held.discard(service_id)
        for service_id in report.unchanged:
            self.runners[service_id].service = new[service_id]
        for service_id in report.restarted:
            runner = self.runners[service_id]
            runner.service = new[service_id]
            runner.conditions = self._conditions(new[service_id])
            runner.note(f"Reloaded: plan entry changed (bundle {new[service_id].digest[:19]}…)")
        for service_id in report.started:
            self.runners[service_id] = self._make_runner(new[service_id])
        # A changed service stopped by hand stays stopped; one that ended is run again.
        for level in plan.levels:
            for service_id in level:
                if service_id in report.started or (
                    service_id in report.restarted
                    and (service_id in was_active or service_id not in self.held)
                ):
                    self.runners[service_id].start()
        self.board.notify()
        return report
