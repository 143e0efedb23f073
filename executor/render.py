"""Text for `extsvc service`: the table and the detail view, shaped like `talosctl service`."""

from __future__ import annotations

from typing import Any

from extsvc.executor.durations import format_duration


def _age(now: float, timestamp: float) -> str:
    return f"{format_duration(max(now - timestamp, 0.0))} ago"


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def services_table(services: list[dict[str, Any]], now: float) -> str:
    rows = [["SERVICE", "STATE", "HEALTH", "LAST-CHANGE", "LAST-EVENT"]]
    for service in services:
        rows.append(
            [
                service["id"],
                service["state"],
                service["health"],
                _age(now, service["lastChange"]),
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


def service_detail(service: dict[str, Any], now: float) -> str:
    pid = service.get("pid")
    fields = [
        ("ID", service["id"]),
        ("STATE", service["state"]),
        ("HEALTH", service["health"]),
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
    lines = [f"{name:<9}{value}" if len(name) < 9 else f"{name} {value}" for name, value in fields]
    events = service["events"]
    for index, event in enumerate(events):
        label = "EVENTS" if index == 0 else ""
        lines.append(
            f"{label:<9}[{event['state']}]: {event['message']} ({_age(now, event['time'])})"
        )
    if not events:
        lines.append(f"{'EVENTS':<9}-")
    return "\n".join(lines)
