"""What the supervisor needs from a container runtime; runc implements it (executor.runc).

Injected into every ServiceRunner so restart and dependency policy can be
tested with a fake runtime and no runc.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from extsvc.compiler.format.plan import ServicePlan

OutputSink = Callable[[str], None]


class Container(Protocol):
    id: str
    # The container's init process as the host sees it.
    pid: int

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process of the container."""
        ...

    async def wait(self) -> int | None:
        """The init's exit code (128+N for signal N; None if unknown), output drained."""
        ...


class ContainerRuntime(Protocol):
    async def launch(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> Container:
        """Prepare the rootfs and start ``spec``; raises LaunchError with the reason."""
        ...

    async def cleanup(self, service: ServicePlan) -> None:
        """Remove what a run of ``service`` left: container, mounts, cgroup. Idempotent."""
        ...
