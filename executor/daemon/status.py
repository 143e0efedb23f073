"""What `extsvc service` reports about a runner, as JSON-ready dicts (psutil for the OS side).

The shape is documented as a JSON Schema: docs/service-status.schema.json.
Times are RFC 3339 (UTC, milliseconds).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psutil

from extsvc.executor.logs.logfile import stamp
from extsvc.executor.service.clock import Moment
from extsvc.executor.service.health import Health
from extsvc.executor.service.runner import ServiceRunner

_HEALTHY = {Health.OK: True, Health.FAIL: False, Health.UNKNOWN: None}


def health(runner: ServiceRunner) -> dict[str, Any] | None:
    """null without an x-extsvc health check (Talos shows "?"); else whether the current
    run is healthy (null: not known yet, or no task) and the check's last message."""
    if runner.service.policy.health is None:
        return None
    return {"healthy": _HEALTHY[runner.health], "message": runner.last_health_message or None}


def _ago(runner: ServiceRunner, at: Moment) -> float:
    """Seconds since ``at`` on CLOCK_BOOTTIME: the age a person reads ("5m ago") counts a
    suspend and does not jump when the wall clock is stepped."""
    return round(max(runner.clock.boottime() - at.boottime, 0.0), 3)


def summary(runner: ServiceRunner) -> dict[str, Any]:
    last = runner.events.last
    return {
        "id": runner.id,
        "state": runner.state.value,
        "health": health(runner),
        "lastChange": stamp(runner.last_change.wall),
        "lastChangeAgo": _ago(runner, runner.last_change),
        "lastEvent": last.text if last is not None else "",
    }


def detail(runner: ServiceRunner) -> dict[str, Any]:
    container = runner.container
    info = summary(runner)
    info.update(
        {
            "pid": container.pid if container is not None else None,
            "runs": runner.runs,
            "restarts": max(runner.runs - 1, 0),
            "lastExitCode": runner.last_exit_code,
            "restartPolicy": runner.service.restart.value,
            "lastHealthMessage": runner.last_health_message,
            "logToConsole": runner.service.log_to_console,
            "adaptations": list(runner.adaptations),
            "events": [
                {**event.to_json(), "ago": _ago(runner, event.at)}
                for event in reversed(list(runner.events))
            ],
            "processes": process_tree(container.pid) if container is not None else [],
        }
    )
    processes = info["processes"]
    info["cpuSeconds"] = round(sum(p["cpuSeconds"] for p in processes), 3)
    info["memoryBytes"] = sum(p["rssBytes"] for p in processes)
    return info


def process_tree(pid: int) -> list[dict[str, Any]]:
    """The container's init and every descendant, with CPU time and resident memory."""
    try:
        init = psutil.Process(pid)
        members = [init, *init.children(recursive=True)]
    except psutil.Error:
        return []
    tree = []
    for process in members:
        with contextlib.suppress(psutil.Error), process.oneshot():
            times = process.cpu_times()
            tree.append(
                {
                    "pid": process.pid,
                    "ppid": process.ppid(),
                    "command": " ".join(process.cmdline()) or process.name(),
                    "cpuSeconds": round(times.user + times.system, 3),
                    "rssBytes": process.memory_info().rss,
                }
            )
    return tree
