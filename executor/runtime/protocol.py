"""What the supervisor needs from a container runtime; runc implements it (executor.runtime.runc).

Injected into every ServiceRunner so restart and dependency policy can be
tested with a fake runtime and no runc. A container's life, as runc's::

    create  -> created: the init exists, stopped before exec; output pipe open
    start   -> running: the init execs the service's process
    signal  -> (kill) every process of the container
    wait    -> the init's exit code, its output drained
    cleanup -> (delete) container, mounts, runtime bundle, cgroup: nothing left

A created container that is never started is removed by ``cleanup`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from extsvc.compiler.format.plan import ServicePlan

# After an exec's timeout, how long the runtime may spend finding and killing what the
# exec started before it returns: `runc exec`'s process has a session of its own and
# only its PID file names it, which runc writes once it started it (late on a loaded
# host). A caller's own bound on exec must allow for it, or it cancels that kill.
EXEC_KILL_WAIT = 10.0


class OutputSink(Protocol):
    def __call__(self, line: bytes, read_at: float, partial: bool = False) -> None:
        """One line the container wrote, without its newline, and when it was read
        (time.time()); ``partial``: a piece of a line not ended yet, continued by the
        next call. stdout and stderr share one pipe: a line's stream is not known."""


@dataclass(frozen=True)
class ExecResult:
    """A command run inside a container: its exit code and merged output."""

    exit_code: int
    output: str


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
    async def create(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> Container:
        """Prepare the rootfs and create ``spec``'s container, not started yet.

        Raises LaunchError with the reason (nothing is left behind then).
        """
        ...

    async def start(self, container: Container) -> None:
        """Let the created container's process run; raises LaunchError with the reason."""
        ...

    async def exec(
        self,
        container: Container,
        argv: Sequence[str],
        timeout: float,
        process: dict[str, Any] | None = None,
    ) -> ExecResult:
        """Run ``argv`` inside the running container (a health check); killed at ``timeout``.

        ``process``: the OCI process to run it as (``argv`` is its ``args``), when the
        check has a user or capabilities of its own; None: the container's own.
        Returns within ``timeout`` + EXEC_KILL_WAIT (and the kill) with what it started
        killed; a cancellation kills the exec at once, what it started only if named.
        """
        ...

    async def cleanup(self, service: ServicePlan) -> None:
        """Remove what a run of ``service`` left: container, mounts, cgroup. Idempotent."""
        ...
