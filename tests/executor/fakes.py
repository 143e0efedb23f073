"""Plans for policy tests, the clock they start from, and their health checks.

The clock and the runtime are the shipped ones (``extsvc.executor.simulate``:
``VirtualClock``, ``ScriptedRuntime``, ``Script``, ``settle``), the ones
``extsvc plan --simulate`` runs on.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import Dependencies, Plan, ServicePlan
from extsvc.compiler.format.servicepolicy import (
    HealthCheck,
    OnUnhealthy,
    RestartPolicy,
    ServicePolicy,
)
from extsvc.executor.runtime.protocol import ExecResult
from extsvc.executor.simulate.clock import VirtualClock

# No reading is a special number: monotonic 1e6 s after boot, the wall clock in 2023.
START = 1_000_000.0
WALL = 1_700_000_000.0


def make_clock() -> VirtualClock:
    """A virtual clock at START (monotonic and boottime) and WALL (wall)."""
    return VirtualClock(START, wall=WALL)


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


def health_check(
    interval: float = 10.0,
    timeout: float = 3.0,
    retries: int = 3,
    start_period: float = 0.0,
    on_unhealthy: OnUnhealthy = OnUnhealthy.NONE,
) -> HealthCheck:
    """A check running /bin/check, which the scripted runtime answers (``runtime.health``)."""
    return HealthCheck(("/bin/check",), interval, timeout, retries, start_period, on_unhealthy)


# Answers of a scripted health check: a failure with two lines of output, a success.
NOT_READY = ExecResult(1, "starting\nnot ready\n")
READY = ExecResult(0, "ok\n")


def gaps(times: list[float]) -> list[float]:
    """The time between each reading and the next."""
    return [b - a for a, b in itertools.pairwise(times)]
