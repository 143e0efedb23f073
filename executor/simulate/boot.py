"""The boot, simulated: the executor's own supervisor on virtual time, with facts for the host.

``extsvc plan OUT --simulate FACTS`` must tell what the real boot would do, so
it runs the real thing: the same ``Supervisor``, ``ServiceRunner`` state
machine, restart policy and condition classes as ``extsvc run``. Only the
edges are replaced, through the injection points the executor already has:

* the container runtime is the scripted one (``simulate.runtime``): each run
  exits as FACTS say;
* the host probes (does a path exist, does a network check pass, is time
  synchronised, is a host service up) answer from FACTS at the current time;
* time is virtual (``simulate.clock``): an asyncio event loop whose clock jumps
  to the next deadline instead of sleeping, so five simulated minutes take
  milliseconds and the timeline is the same on every run.

The policy tests use the same runtime and clock, so what they pin down is what
the simulation runs.

No second implementation of the policy exists to drift from the first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES
from extsvc.compiler.format.plan import Plan, ServicePlan
from extsvc.executor.host.readiness import ReadinessRule
from extsvc.executor.runtime.adapt import HostFacts
from extsvc.executor.service.conditions import HostProbes
from extsvc.executor.service.context import RunnerSettings
from extsvc.executor.service.restart import RestartTiming
from extsvc.executor.service.states import Event, ServiceState
from extsvc.executor.simulate.clock import VirtualClock, VirtualTimeLoop
from extsvc.executor.simulate.facts import Facts
from extsvc.executor.simulate.runtime import Script, ScriptedRuntime
from extsvc.executor.supervise.supervisor import NoConfiguration, Supervisor, SupervisorSettings

# Host services are judged by a path rule on a path only the simulation knows.
HOST_SERVICE_ROOT = "/run/extsvc-simulation/host-services/"
# The PID before the first simulated container's: "(PID 1001)" in the timeline.
FIRST_PID = 1000


def _true_at(moment: float | None, now: float) -> bool:
    return moment is not None and moment <= now


def fact_probes(facts: Facts, clock: VirtualClock) -> HostProbes:
    """Host probes that answer from ``facts`` at the clock's current time."""

    def path_exists(path: str) -> bool:
        if path.startswith(HOST_SERVICE_ROOT):
            moment = facts.host_services.get(path.removeprefix(HOST_SERVICE_ROOT))
        else:
            moment = facts.paths.get(path.rstrip("/") or "/", facts.paths.get(path))
        return _true_at(moment, clock.monotonic())

    def network(check: str) -> Any:
        return lambda: _true_at(facts.network.get(check), clock.monotonic())

    return HostProbes(
        path_exists=path_exists,
        network={
            check: network(check) for check in ("addresses", "connectivity", "hostname", "etcfiles")
        },
        clock_synchronised=lambda: _true_at(facts.time, clock.monotonic()),
    )


class FactConfiguration(NoConfiguration):
    """Configuration documents that appear when ``facts`` say (looked at every second)."""

    watched = False

    def __init__(self, facts: Facts, clock: VirtualClock) -> None:
        self._facts = facts
        self._clock = clock

    def has(self, name: str) -> bool:
        return _true_at(self._facts.configurations.get(name), self._clock.monotonic())


@dataclass(frozen=True)
class TimelineEvent:
    time: float
    service: str
    state: str
    message: str


@dataclass(frozen=True)
class Outcome:
    service: str
    state: str
    starts: int
    message: str  # the last event's message
    never_started: str | None  # why, when it never ran


@dataclass(frozen=True)
class Simulation:
    until: float
    events: tuple[TimelineEvent, ...]
    outcomes: tuple[Outcome, ...]

    @property
    def starts(self) -> list[tuple[float, str]]:
        """Each entry into Running (a Running event after another state: health-check
        events stay in Running and are no new start)."""
        starts: list[tuple[float, str]] = []
        previous: dict[str, str] = {}
        for event in self.events:
            if event.state == ServiceState.RUNNING.value != previous.get(event.service):
                starts.append((event.time, event.service))
            previous[event.service] = event.state
        return starts


def simulate(plan: Plan, facts: Facts) -> Simulation:
    """Run the boot of ``plan`` under ``facts`` on virtual time, up to ``facts.until``."""
    clock = VirtualClock()  # boot is at 0 on every reading: FACTS times are since boot
    loop = VirtualTimeLoop(clock)
    try:
        return loop.run_until_complete(_simulate(plan, facts, clock))
    finally:
        loop.close()


def scripted_runtime(facts: Facts, clock: VirtualClock) -> ScriptedRuntime:
    """runc's lifecycle as FACTS describe it: run N of a service ends like ``runs[N]``
    (the last one repeats; a service not listed runs until stopped)."""
    scripts = {
        service_id: [
            Script(exit_code=run.exit_code, duration=run.after, start_error=run.start_error)
            for run in runs
        ]
        for service_id, runs in facts.services.items()
    }
    return ScriptedRuntime(clock, scripts, last_pid=FIRST_PID, records=False)


async def _simulate(plan: Plan, facts: Facts, clock: VirtualClock) -> Simulation:
    events: list[TimelineEvent] = []

    recording = True

    def record(service_id: str, event: Event) -> None:
        if recording:  # not the shutdown at the end: the boot is what is simulated
            events.append(
                TimelineEvent(event.at.monotonic, service_id, event.state.value, event.message)
            )

    host_services = {
        service_id: ReadinessRule(path=HOST_SERVICE_ROOT + service_id)
        for service in plan.services.values()
        for service_id in service.depends.host_services
    }
    with tempfile.TemporaryDirectory(prefix="extsvc-simulation-") as logs:
        supervisor = Supervisor(
            plan,
            scripted_runtime(facts, clock),
            clock,
            SupervisorSettings(
                HostFacts(
                    bounding_capabilities=frozenset(LINUX_CAPABILITIES), can_lower_oom_score=True
                ),
                RunnerSettings(
                    restart=RestartTiming(facts.restart_interval, facts.restart_backoff_max)
                ),
                log_dir=Path(logs),
                host_services=host_services,
                probes=fact_probes(facts, clock),
            ),
            configuration=FactConfiguration(facts, clock),
            on_event=record,
        )
        supervisor.start_all()
        await clock.sleep(facts.until)
        outcomes = _outcomes(supervisor, plan, facts)
        recording = False
        await supervisor.shutdown()
    return Simulation(facts.until, tuple(events), outcomes)


def _never_met(service: ServicePlan, facts: Facts) -> bool:
    """Does FACTS say one of this service's host conditions never comes true?"""
    depends = service.depends
    moments = [
        *(facts.paths.get(p) for p in depends.paths),
        *(facts.network.get(check) for check in depends.network),
        *(facts.host_services.get(h) for h in depends.host_services),
    ]
    if depends.environment_file is not None:
        moments.append(facts.paths.get(depends.environment_file))
    if depends.time:
        moments.append(facts.time)
    if depends.configuration:
        moments.append(facts.configurations.get(service.name))
    return any(moment is None for moment in moments)


def _waits_forever(plan: Plan, supervisor: Supervisor, facts: Facts) -> set[str]:
    """Services that never ran and never will: a condition FACTS never meet, or a
    dependency that failed for good or waits forever itself."""
    forever: set[str] = set()
    changed = True
    while changed:
        changed = False
        for service_id, service in plan.services.items():
            if service_id in forever or supervisor.runners[service_id].tasks_started:
                continue
            stuck_on = [
                dep
                for dep in service.depends.services
                if dep in forever or supervisor.runners[dep].state is ServiceState.FAILED
            ]
            if _never_met(service, facts) or stuck_on:
                forever.add(service_id)
                changed = True
    return forever


def _outcomes(supervisor: Supervisor, plan: Plan, facts: Facts) -> tuple[Outcome, ...]:
    forever = _waits_forever(plan, supervisor, facts)
    outcomes = []
    for service_id, runner in sorted(supervisor.runners.items()):
        last = runner.events.last
        message = last.message if last is not None else ""
        never: str | None = None
        if runner.tasks_started == 0:
            if runner.state is ServiceState.WAITING and message.startswith("Waiting for "):
                what = message.removeprefix("Waiting for ")
                never = (
                    f"waits forever for {what}"
                    if service_id in forever
                    else f"still waits for {what}"
                )
            else:
                never = message
        outcomes.append(
            Outcome(service_id, runner.state.value, runner.tasks_started, message, never)
        )
    return tuple(outcomes)


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"+{text}s"


def render_text(simulation: Simulation) -> str:
    """The timeline, the start waves, and what never started and why."""
    lines = [f"boot timeline (simulated, until {_seconds(simulation.until)[1:]})"]
    width = max((len(e.service) for e in simulation.events), default=0)
    for event in simulation.events:
        when, state = _seconds(event.time), event.state
        lines.append(f"  {when:>9}  {event.service:<{width}}  {state:<9}  {event.message}")
    lines.append("")
    lines.append("start waves:")
    waves: dict[float, list[str]] = {}
    for moment, service_id in simulation.starts:
        waves.setdefault(moment, []).append(service_id)
    for moment, services in waves.items():
        lines.append(f"  {_seconds(moment):>9}  {', '.join(services)}")
    if not waves:
        lines.append("  (none)")
    lines.append("")
    lines.append(f"at {_seconds(simulation.until)}:")
    for outcome in simulation.outcomes:
        runs = f"{outcome.starts} run{'s' * (outcome.starts != 1)}"
        if outcome.never_started is not None:
            lines.append(f"  {outcome.service} never started: {outcome.never_started}")
        else:
            lines.append(f"  {outcome.service} {outcome.state} after {runs}: {outcome.message}")
    return "\n".join(lines) + "\n"


def to_json(simulation: Simulation) -> Mapping[str, Any]:
    return {
        "until": simulation.until,
        "events": [
            {"time": e.time, "service": e.service, "state": e.state, "message": e.message}
            for e in simulation.events
        ],
        "starts": [{"time": t, "service": s} for t, s in simulation.starts],
        "services": [
            {
                "service": o.service,
                "state": o.state,
                "starts": o.starts,
                "lastEvent": o.message,
                "neverStarted": o.never_started,
            }
            for o in simulation.outcomes
        ],
    }
