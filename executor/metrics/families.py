"""The executor's state as metric families (executor.metrics.exposition renders them).

What a fleet operator alerts on: which service is not Running, which one
crash-loops, which health check fails, which log sink drops lines, whether the
executor itself lags. Every per-service series carries ``service`` (the ``ext-`` id).

Times are exported as Unix timestamps (``*_timestamp_seconds``), never as "seconds
since": the metrics file is rewritten only when something changes (no wake-ups
while idle), so an age written into it would be wrong by the time it is scraped;
``time() - extsvc_service_state_change_timestamp_seconds`` is right whenever it is
evaluated (node_exporter's ``node_boot_time_seconds`` is exported the same way).

Two readings: ``live`` (a scrape, `extsvc metrics`) adds each running service's
cgroup memory and CPU, read at that moment; the metrics file leaves them out,
since a value written at the last state change would be stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from extsvc.executor.metrics.exposition import Family, Kind
from extsvc.executor.service.states import ServiceState

if TYPE_CHECKING:  # the runner pulls in asyncio; `extsvc metrics` without a daemon needs neither
    from extsvc.executor.service.runner import ServiceRunner

# executor.service.health.Health's values (the HEALTH column) as the status label says them.
_HEALTH_STATUS = {"OK": "healthy", "Fail": "unhealthy", "?": "unknown"}


@dataclass
class ExecutorCounters:
    """What the daemon counts about itself (the runners count the rest)."""

    version: str
    started_at: float
    plan_digest: str = ""
    reloads: int = 0
    reload_failures: int = 0
    control_requests: dict[str, int] = field(default_factory=dict)
    # The last event-loop lag measured, seconds (None until one is measured).
    loop_lag: float | None = None

    def count_request(self, op: str) -> None:
        self.control_requests[op] = self.control_requests.get(op, 0) + 1


@dataclass(frozen=True)
class SinkDrops:
    """Lines a sink dropped since the executor started (``sink``: console, kmsg, ...)."""

    sink: str
    total: int


def up_family(up: bool) -> Family:
    family = Family("extsvc_up", Kind.GAUGE, "1 while the executor runs, 0 once it has stopped.")
    family.add(1 if up else 0)
    return family


def executor_families(
    counters: ExecutorCounters, up: bool, sink_drops: Iterable[SinkDrops] = ()
) -> list[Family]:
    build = Family("extsvc_build", Kind.INFO, "The executor's version and its plan's digest.")
    build.add(1, version=counters.version, plan_digest=counters.plan_digest)
    started = Family(
        "extsvc_start_time_seconds", Kind.GAUGE, "When the executor started (Unix time)."
    )
    started.add(counters.started_at)
    reloads = Family("extsvc_reloads", Kind.COUNTER, "Plan reloads asked for (SIGHUP or reload).")
    reloads.add(counters.reloads)
    failures = Family(
        "extsvc_reload_failures", Kind.COUNTER, "Reloads refused (the new plan was invalid)."
    )
    failures.add(counters.reload_failures)
    requests = Family(
        "extsvc_control_requests", Kind.COUNTER, "Requests answered on the control socket, by op."
    )
    for op, count in sorted(counters.control_requests.items()):
        requests.add(count, op=op)
    lag = Family(
        "extsvc_event_loop_lag_seconds",
        Kind.GAUGE,
        "How late the executor's event loop last ran a callback it had scheduled.",
    )
    if counters.loop_lag is not None:
        lag.add(counters.loop_lag)
    drops = Family(
        "extsvc_sink_dropped_lines",
        Kind.COUNTER,
        "Lines a shared sink (console, kmsg, journald) dropped instead of blocking.",
    )
    for sink in sink_drops:
        drops.add(sink.total, sink=sink.sink)
    return [up_family(up), build, started, reloads, failures, requests, lag, drops]


def service_families(runners: Iterable[ServiceRunner], live: bool) -> list[Family]:
    state = Family(
        "extsvc_service_state", Kind.GAUGE, "1 for the state the service is in, 0 for the others."
    )
    health = Family(
        "extsvc_service_health",
        Kind.GAUGE,
        "1 for the current health-check status (services with an x-extsvc health check).",
    )
    runs = Family(
        "extsvc_service_runs", Kind.COUNTER, "Runs begun: every start, failed starts included."
    )
    restarts = Family(
        "extsvc_service_restarts", Kind.COUNTER, "Runs begun after the first (failed starts too)."
    )
    failed_starts = Family(
        "extsvc_service_failed_starts", Kind.COUNTER, "Runs whose container never started."
    )
    exit_code = Family(
        "extsvc_service_last_exit_code", Kind.GAUGE, "Exit code of the last run that ended."
    )
    changed = Family(
        "extsvc_service_state_change_timestamp_seconds",
        Kind.GAUGE,
        "When the service entered its current state (Unix time).",
    )
    run_started = Family(
        "extsvc_service_run_start_timestamp_seconds",
        Kind.GAUGE,
        "When the current run's task started (Unix time; while Running).",
    )
    dropped = Family(
        "extsvc_service_log_dropped_lines",
        Kind.COUNTER,
        "Lines of the service's output its log file could not take (disk full, ...).",
    )
    memory = Family(
        "extsvc_service_memory_bytes", Kind.GAUGE, "Memory charged to the service's cgroup."
    )
    cpu = Family(
        "extsvc_service_cpu_seconds", Kind.COUNTER, "CPU time used by the service's cgroup."
    )
    for runner in runners:
        service = runner.id
        for candidate in ServiceState:
            state.add(1 if runner.state is candidate else 0, service=service, state=candidate.value)
        if runner.service.policy.health is not None:
            current = _HEALTH_STATUS[runner.health.value]
            for status in _HEALTH_STATUS.values():
                health.add(1 if status == current else 0, service=service, status=status)
        runs.add(runner.runs, service=service)
        restarts.add(max(runner.runs - 1, 0), service=service)
        failed_starts.add(runner.failed_starts, service=service)
        if runner.last_exit_code is not None:
            exit_code.add(runner.last_exit_code, service=service)
        changed.add(runner.last_change.wall, service=service)
        if runner.state is ServiceState.RUNNING:
            run_started.add(runner.last_change.wall, service=service)
        dropped.add(runner.log.dropped_total, service=service)
        container = runner.container
        if live and container is not None:
            usage = cgroup_usage(container.pid)
            if usage.memory_bytes is not None:
                memory.add(usage.memory_bytes, service=service)
            if usage.cpu_seconds is not None:
                cpu.add(usage.cpu_seconds, service=service)
    return [
        state,
        health,
        runs,
        restarts,
        failed_starts,
        exit_code,
        changed,
        run_started,
        dropped,
        memory,
        cpu,
    ]


@dataclass(frozen=True)
class CgroupUsage:
    memory_bytes: int | None = None
    cpu_seconds: float | None = None


def cgroup_usage(pid: int, root: Path = Path("/sys/fs/cgroup")) -> CgroupUsage:
    """Memory and CPU of the cgroup ``pid`` lives in, found through /proc/PID/cgroup
    (wherever the runtime put it: Talos's path, or a systemd-delegated one).

    cgroup v1: memory.usage_in_bytes and cpuacct.usage (ns); v2: memory.current and
    cpu.stat's usage_usec. What cannot be read (no such controller, process gone) is None.
    """
    try:
        membership = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return CgroupUsage()
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in membership.splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2 = path
        for controller in controllers.split(","):
            v1[controller] = path
    if "memory" in v1 or "cpuacct" in v1:
        memory = cpu = None
        if "memory" in v1:
            memory = _read_int(root / "memory" / v1["memory"].lstrip("/") / "memory.usage_in_bytes")
        if "cpuacct" in v1:
            nanoseconds = _read_int(root / "cpuacct" / v1["cpuacct"].lstrip("/") / "cpuacct.usage")
            cpu = nanoseconds / 1e9 if nanoseconds is not None else None
        return CgroupUsage(memory, cpu)
    if v2 is not None:
        directory = root / v2.lstrip("/")
        memory = _read_int(directory / "memory.current")
        return CgroupUsage(memory, _usage_usec(directory / "cpu.stat"))
    return CgroupUsage()


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _usage_usec(path: Path) -> float | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    except (OSError, ValueError):
        return None
    return None


def stopped_families(state_dir: Path, run_info: dict[str, object]) -> list[Family]:
    """What the state dir of a stopped executor still says: ``extsvc_up 0``, and for each
    service of the plan it last ran whether its container is still there (runc's state
    under ``<state>/runc``): a container left behind by an executor that died."""
    import json

    left = Family(
        "extsvc_service_container_present",
        Kind.GAUGE,
        "1 when the runtime still has the service's container (read from the state dir).",
    )
    plan_path = run_info.get("plan")
    try:
        plan = json.loads(Path(str(plan_path)).read_text()) if plan_path else {}
        services = sorted(str(service_id) for service_id in plan.get("services", {}))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        services = []
    for service in services:
        present = (state_dir / "runc" / service / "state.json").exists()
        left.add(1 if present else 0, service=service)
    return [up_family(False), left]
