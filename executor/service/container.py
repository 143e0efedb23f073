"""A service's container as its runner asks for it: with the spec of the moment,
created ahead of its start whenever it can be, removed after each run.

The spec is the compiled one with the run-time configuration (ExtensionServiceConfig
documents), adapted to this host. A container is created ahead while its service
waits, as soon as its spec is final (executor.service.waiting), and during the
interval before a restart: once the service is due only `start` remains. If the spec
differs then (a new configuration document) the container created ahead is removed
and another created. Until its start a container holds only a stopped init. A create
ahead that fails is not reported: it is tried again, and reported, at the start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.errors import LaunchError
from extsvc.executor.logs.servicelog import ServiceLog
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from extsvc.executor.runtime.bundles import spec_key
from extsvc.executor.runtime.protocol import Container, ContainerRuntime


class ContainerMaker:
    def __init__(
        self,
        runtime: ContainerRuntime,
        host: HostFacts,
        log: ServiceLog,
        prepare_spec: Callable[[ServicePlan], dict[str, Any]],
        report: Callable[[str], None],
    ) -> None:
        self.runtime = runtime
        self.host = host
        self._log = log
        # Run-time additions to the compiled spec (ExtensionServiceConfig).
        self._prepare_spec = prepare_spec
        # An event of the service's current state ("Cleanup incomplete: ...").
        self._report = report
        # Created ahead of its start, with the key of the spec it was created from.
        self._created: tuple[Container, str] | None = None
        # A create ahead failed (or would: the last start failed), so none is tried
        # until the runner resets it.
        self.ahead_failed = False

    def spec(self, service: ServicePlan) -> tuple[dict[str, Any], list[str]]:
        """The spec to run and what host adaptation changed in it; raises LaunchError."""
        adapted, adaptations = adapt_spec(self._prepare_spec(service), self.host)
        return adapted, [adaptation.message for adaptation in adaptations]

    def create(self, service: ServicePlan, spec: dict[str, Any]) -> Awaitable[Container]:
        return self.runtime.create(service, spec, self._on_output)

    async def create_ahead(self, service: ServicePlan) -> None:
        """Create the container now so that its start is all that is left to do later."""
        if self._created is not None or self.ahead_failed:
            return
        try:
            spec, _ = self.spec(service)
            container = await self.create(service, spec)
        except LaunchError:
            self.ahead_failed = True
            return
        self._created = (container, spec_key(spec))

    async def discard_stale(self, service: ServicePlan, spec: dict[str, Any]) -> None:
        """Remove the container created ahead if it was not created from ``spec``."""
        if self._created is not None and self._created[1] != spec_key(spec):
            await self.discard_ahead(service)

    def take_ahead(self) -> Container | None:
        """The container created ahead, if any, now the caller's."""
        container = self._created[0] if self._created is not None else None
        self._created = None
        return container

    async def discard_ahead(self, service: ServicePlan) -> None:
        """Remove the container created ahead, if any (a start that will not come)."""
        if self._created is not None:
            self._created = None
            await self.cleanup(service)

    async def cleanup(self, service: ServicePlan) -> None:
        """runtime.cleanup; a runtime that hangs there is reported, not raised (each call
        is bounded by the runtime's own timeout, what it left is cleaned at the next run)."""
        try:
            await self.runtime.cleanup(service)
        except LaunchError as error:
            self._report(f"Cleanup incomplete: {error}")

    def _on_output(self, line: bytes, read_at: float, partial: bool = False) -> None:
        self._log.write(line.decode(errors="replace"), read_at, partial)
