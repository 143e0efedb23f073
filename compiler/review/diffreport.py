"""Diff reports: the change records of ``compiler.review.diff`` as text for people or JSON for bots.

Pure string building. Text is grouped by service, one line per change, in the
order ``diff_outputs`` gives (services that gained privilege first, privilege+
changes first within each); colour is the caller's decision (a terminal, and no
``NO_COLOR``). The JSON document follows ``diff.schema.json``
(``extsvc schema --diff``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from extsvc.compiler.format.plan import PLAN_API_VERSION
from extsvc.compiler.review.diff import Change, Privilege

_COLOURS = {Privilege.MORE: "\033[31m", Privilege.LESS: "\033[32m", Privilege.NEUTRAL: ""}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"{code}{text}{_RESET}" if colour and code else text


def _counts(changes: list[Change]) -> str:
    counts = Counter(change.privilege for change in changes)
    return ", ".join(f"{counts[p]} {p.value}" for p in Privilege)


def render_text(changes: list[Change], *, colour: bool = False) -> str:
    """The report, or "" when nothing changed (identical inputs print nothing)."""
    if not changes:
        return ""
    lines: list[str] = []
    services = list(dict.fromkeys(change.service for change in changes))
    for service in services:
        own = [change for change in changes if change.service == service]
        plural = "s" * (len(own) != 1)
        header = f"{service}: {len(own)} change{plural} ({_counts(own)})"
        lines.append(_paint(header, _BOLD, colour))
        width = max(len(change.field) for change in own)
        for change in own:
            tag = _paint(f"{change.privilege.value:<10}", _COLOURS[change.privilege], colour)
            lines.append(f"  {tag}  {change.field:<{width}}  {change.summary}".rstrip())
        lines.append("")
    plural = "s" * (len(services) != 1)
    lines.append(f"{len(services)} service{plural} changed: {_counts(changes)}")
    return "\n".join(lines) + "\n"


def to_json(changes: list[Change], *, old: str, new: str) -> dict[str, Any]:
    counts = Counter(change.privilege for change in changes)
    return {
        "apiVersion": PLAN_API_VERSION,
        "kind": "Diff",
        "old": old,
        "new": new,
        "summary": {
            "services": len({change.service for change in changes}),
            **{p.value: counts[p] for p in Privilege},
        },
        "changes": [
            {
                "service": change.service,
                "field": change.field,
                "change": change.kind.value,
                "privilege": change.privilege.value,
                "summary": change.summary,
                "old": change.old,
                "new": change.new,
            }
            for change in changes
        ],
    }
