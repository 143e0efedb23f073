"""Text for `extsvc service`: the table and the detail view, shaped like `talosctl service`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from extsvc.executor.durations import format_duration
from extsvc.executor.states import folded


def _epoch(moment: str | float) -> float:
    if isinstance(moment, int | float):
        return float(moment)
    return datetime.fromisoformat(moment).timestamp()


def _age(now: str | float, moment: str | float, ago: Any = None) -> str:
    """``ago``, the age the executor measured (CLOCK_BOOTTIME: a wall-clock step does not
    change it), or else the difference of two wall-clock labels."""
    if not isinstance(ago, int | float):
        ago = _epoch(now) - _epoch(moment)
    return f"{format_duration(max(float(ago), 0.0))} ago"


def _health(service: dict[str, Any]) -> str:
    """Talos's column: "?" without a health check or before its first result."""
    health = service.get("health")
    if not isinstance(health, dict) or health.get("healthy") is None:
        return "?"
    return "OK" if health["healthy"] else "Fail"


def plan_note(plan: dict[str, Any] | None) -> str | None:
    """systemd's "changed on disk": the compiled plan differs from the one running."""
    if not plan or not plan.get("changedOnDisk"):
        return None
    return (
        f"warning: {plan['path']} changed on disk since it was loaded; "
        "run `extsvc reload` to apply it"
    )


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def services_table(services: list[dict[str, Any]], now: str | float) -> str:
    rows = [["SERVICE", "STATE", "HEALTH", "LAST-CHANGE", "LAST-EVENT"]]
    for service in services:
        rows.append(
            [
                service["id"],
                service["state"],
                _health(service),
                _age(now, service["lastChange"], service.get("lastChangeAgo")),
                service["lastEvent"],
            ]
        )
    return _columns(rows)


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{count} B"


def _health_message(service: dict[str, Any]) -> list[tuple[str, str]]:
    # talosctl's LAST HEALTH MESSAGE, shown only when there is one.
    message = service.get("lastHealthMessage")
    return [("LAST HEALTH MESSAGE", message)] if message else []


def service_detail(service: dict[str, Any], now: str | float) -> str:
    pid = service.get("pid")
    fields = [
        ("ID", service["id"]),
        ("STATE", service["state"]),
        ("HEALTH", _health(service)),
        *_health_message(service),
        ("PID", str(pid) if pid is not None else "-"),
        ("RESTARTS", str(service["restarts"])),
        ("RESTART", service["restartPolicy"]),
    ]
    if pid is not None:
        fields.append(("CPU", f"{service['cpuSeconds']:.2f}s"))
        fields.append(
            ("MEMORY", f"{_bytes(service['memoryBytes'])} ({len(service['processes'])} processes)")
        )
    # Host adaptations of the spec, the same every run: shown here, an event only once.
    fields += [("ADAPTATION", text) for text in service.get("adaptations", [])]
    lines = [f"{name:<9}{value}" if len(name) < 9 else f"{name} {value}" for name, value in fields]
    events = service["events"]
    for index, event in enumerate(events):
        label = "EVENTS" if index == 0 else ""
        text = folded(event["message"], event.get("count", 1))
        lines.append(
            f"{label:<9}[{event['state']}]: {text} ({_age(now, event['time'], event.get('ago'))})"
        )
    if not events:
        lines.append(f"{'EVENTS':<9}-")
    return "\n".join(lines)
