"""What a service waits for before it starts (DESIGN §6), one small class per kind.

A condition answers ``satisfied()`` and says what it waits for in Talos's words
(``service "cri" to be "up"``, ``path "/dev/zfs"``, ``network``). Conditions on
other services of the plan change only when a service changes state, so they are
re-evaluated on that event; host conditions (paths, network, time, host services)
are ``polled``: re-checked on a timer, once a second like Talos. A configuration
document is an event too where its directory is watched (``extsvc run``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.host import probes as host_probes
from extsvc.executor.host.readiness import ReadinessRule
from extsvc.executor.process.helpers import run_process

READINESS_COMMAND_TIMEOUT = 10.0


@dataclass(frozen=True)
class HostProbes:
    """How host conditions look at the host; `extsvc plan --simulate` answers from facts."""

    path_exists: Callable[[str], bool] = os.path.exists
    network: Mapping[str, Callable[[], bool]] = field(
        default_factory=lambda: host_probes.NETWORK_CHECKS
    )
    clock_synchronised: Callable[[], bool] = host_probes.clock_synchronised


class ConfigurationSource(Protocol):
    """Where a service's ExtensionServiceConfig document comes from, as its condition
    sees it (supervise.configwatch.ConfigDirectory in the daemon)."""

    # True: a change is announced (the board is notified), so the condition is not polled.
    @property
    def watched(self) -> bool: ...

    def has(self, name: str) -> bool:
        """A usable document for the service ``name`` is there."""
        ...

    def problem(self, name: str) -> str | None:
        """Why the document for ``name`` is refused, if it is."""
        ...


class Condition(Protocol):
    # True: re-check on a timer; False: re-check when a service changes state.
    polled: bool
    # True: the service's spec is not final until this is met (its configuration
    # document, its environment file), so its container cannot be created before.
    affects_spec: bool

    def describe(self) -> str: ...

    async def satisfied(self) -> bool: ...


class ExtensionServiceUp:
    """Another service of the plan is Running (or, as a one-shot, Finished with exit 0),
    and healthy if it has a health check (the seed: "running and healthy")."""

    polled = False
    affects_spec = False

    def __init__(
        self, service_id: str, is_up: Callable[[str], bool], healthy: bool = False
    ) -> None:
        self.service_id = service_id
        self._is_up = is_up
        self._healthy = healthy

    def describe(self) -> str:
        if self._healthy:
            return f'service "{self.service_id}" to be "up" and healthy'
        return f'service "{self.service_id}" to be "up"'

    async def satisfied(self) -> bool:
        return self._is_up(self.service_id)


class HostServiceUp:
    """A service outside the plan, judged by its ``--host-services`` readiness rule."""

    polled = True
    affects_spec = False

    def __init__(
        self,
        service_id: str,
        rule: ReadinessRule | None,
        path_exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        self.service_id = service_id
        self.rule = rule
        self._path_exists = path_exists

    @property
    def runs_command(self) -> bool:
        """Its check runs a command (systemctl, or the rule's), which may take a while."""
        return self.rule is not None and (
            self.rule.command is not None or self.rule.systemd_unit is not None
        )

    def describe(self) -> str:
        text = f'service "{self.service_id}" to be "up"'
        if self.rule is None:
            return text + " (no readiness rule for it in --host-services)"
        return text

    async def satisfied(self) -> bool:
        rule = self.rule
        if rule is None:
            return False
        if rule.always:
            return True
        if rule.path is not None:
            return self._path_exists(rule.path)
        if rule.systemd_unit is not None:
            # Found in the children's PATH (executor.process.spawn), as a command's program is.
            argv: tuple[str, ...] = ("systemctl", "is-active", "--quiet", rule.systemd_unit)
        else:
            assert rule.command is not None
            argv = rule.command
        completed = await run_process(argv, timeout=READINESS_COMMAND_TIMEOUT, capture=False)
        return completed.returncode == 0


class PathExists:
    polled = True

    def __init__(
        self,
        path: str,
        affects_spec: bool = False,
        exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        self.path = path
        self.affects_spec = affects_spec
        self._exists = exists

    def describe(self) -> str:
        return f'path "{self.path}"'

    async def satisfied(self) -> bool:
        return self._exists(self.path)


class NetworkReady:
    """The requested network checks; the description names those still failing."""

    polled = True
    affects_spec = False

    def __init__(
        self, checks: tuple[str, ...], probes: Mapping[str, Callable[[], bool]] | None = None
    ) -> None:
        self.checks = checks
        self._probes = probes if probes is not None else host_probes.NETWORK_CHECKS
        self._failing: tuple[str, ...] = checks

    def describe(self) -> str:
        return f"network ({', '.join(self._failing)})" if self._failing else "network"

    async def satisfied(self) -> bool:
        self._failing = tuple(check for check in self.checks if not self._probes[check]())
        return not self._failing


class TimeSynchronised:
    polled = True
    affects_spec = False

    def __init__(self, probe: Callable[[], bool] = host_probes.clock_synchronised) -> None:
        self._probe = probe

    def describe(self) -> str:
        return "time sync"

    async def satisfied(self) -> bool:
        return self._probe()


class ConfigurationPresent:
    """An ExtensionServiceConfig named after the service is available.

    Polled unless its source is ``watched``: the executor's watch (inotify) then
    wakes the waiting services when a document changes.
    """

    affects_spec = True

    def __init__(self, name: str, source: ConfigurationSource) -> None:
        self.name = name
        self.polled = not source.watched
        self._source = source

    def describe(self) -> str:
        # An invalid document is shown where the operator looks: the service's events.
        problem = self._source.problem(self.name)
        refused = f" (refused: {problem})" if problem else ""
        return f'configuration "{self.name}"{refused}'

    async def satisfied(self) -> bool:
        return self._source.has(self.name)


def conditions_for(
    service: ServicePlan,
    is_up: Callable[[str], bool],
    host_services: Mapping[str, ReadinessRule],
    configuration: ConfigurationSource,
    probes: HostProbes | None = None,
    has_health_check: Callable[[str], bool] = lambda service_id: False,
) -> list[Condition]:
    """The service's dependencies, in the order Talos lists them in its message."""
    probes = probes or HostProbes()
    exists = probes.path_exists
    depends = service.depends
    conditions: list[Condition] = []
    conditions.extend(
        ExtensionServiceUp(dep, is_up, has_health_check(dep)) for dep in depends.services
    )
    conditions.extend(
        HostServiceUp(dep, host_services.get(dep), exists) for dep in depends.host_services
    )
    conditions.extend(PathExists(path, exists=exists) for path in depends.paths)
    if depends.environment_file is not None:
        conditions.append(PathExists(depends.environment_file, affects_spec=True, exists=exists))
    if depends.network:
        conditions.append(NetworkReady(depends.network, probes.network))
    if depends.time:
        conditions.append(TimeSynchronised(probes.clock_synchronised))
    if depends.configuration:
        conditions.append(ConfigurationPresent(service.name, configuration))
    return conditions
