"""Text for `extsvc service`: the table and the detail view, shaped like `talosctl service`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.executor.service.states import folded


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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _process_age() -> float:
    """Seconds since this process started (the kernel's record, in clock ticks since
    boot), on CLOCK_BOOTTIME; 0 where /proc does not say."""
    import os
    import time

    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(time.clock_gettime(time.CLOCK_BOOTTIME) - started, 0.0)


def debug_report(marks: dict[str, float], response: dict[str, Any]) -> str:
    """`extsvc service --debug`: each leg of this command, and the executor's loop."""
    import time

    done, age = time.monotonic(), _process_age()
    timing = response.get("timing") or {}
    queued = timing.get("queuedSeconds")
    handled = timing.get("handledSeconds")
    legs = [
        ("start-up (interpreter, imports)", age - (done - marks["connecting"])),
        ("connect and send", marks["sent"] - marks["connecting"]),
    ]
    if isinstance(queued, int | float) and isinstance(handled, int | float):
        legs.append(("in the executor: before it read the request", queued))
        legs.append(("in the executor: handling it", handled))
        answer = marks["answered"] - marks["sent"] - queued - handled
        legs.append(("the answer's way back", max(answer, 0.0)))
    else:
        legs.append(("the executor's answer", marks["answered"] - marks["sent"]))
    legs.append(("reading, rendering, printing", done - marks["answered"]))
    lines = [f"debug: {what:<46}{_ms(seconds):>11}" for what, seconds in legs]
    lines.append(f"debug: {'total (since the process started)':<46}{_ms(age):>11}")
    lines.append("debug: " + loop_summary(response.get("loop")))
    return "\n".join(lines)


def loop_summary(loop: Any) -> str:
    """One line from the status JSON's ``loop`` (executor.daemon.loopstats)."""
    if not isinstance(loop, dict) or not loop.get("measured"):
        return "executor loop: not measured"
    parts = [
        f"executor loop, last {format_duration(loop['windowSeconds'])}: "
        f"{loop['batches']} turns, busy {loop['busy'] * 100:.0f}%"
    ]
    for key, what in (("batchSeconds", "turn"), ("timerLateSeconds", "timers late by")):
        figures = loop.get(key)
        if figures:
            parts.append(
                f"{what} p50 {_ms(figures['p50'])} p99 {_ms(figures['p99'])} "
                f"max {_ms(figures['max'])}"
            )
    if loop.get("cpuWait") is not None:
        parts.append(f"waiting for a CPU {loop['cpuWait'] * 100:.0f}% of the time")
    return "; ".join(parts)
