"""What a service runner is given: the settings every service shares and the context
one supervisor makes once for all its runners (runtime, clock, host facts, board)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor.options import DEFAULT_CHECK_INTERVAL, DEFAULT_STOP_TIMEOUT
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.runtime.protocol import ContainerRuntime
from extsvc.executor.service.board import StateBoard
from extsvc.executor.service.clock import Clock
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import Event


@dataclass(frozen=True)
class RunnerSettings:
    """How every runner times its service (`extsvc run`'s options; Talos's by default):
    the wait between runs, the SIGTERM -> SIGKILL grace, the re-check of conditions."""

    restart: RestartTiming = field(default_factory=RestartTiming)
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    check_interval: float = DEFAULT_CHECK_INTERVAL


@dataclass(frozen=True)
class RunnerContext:
    """What every runner of one supervisor shares: made once, by the supervisor."""

    runtime: ContainerRuntime
    clock: Clock
    host: HostFacts
    # Every state change is notified here: the conditions of other services wait on it.
    board: StateBoard
    settings: RunnerSettings
    # Every event, as it happens (the console, journald, the event stream).
    on_event: Callable[[str, Event], None] | None = None
    # Run-time additions to the compiled spec (ExtensionServiceConfig); none by default.
    prepare_spec: Callable[[ServicePlan], dict[str, Any]] | None = None
