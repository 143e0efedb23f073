"""The vocabulary of every comparer: a change, its privilege class, and the generic comparers.

A comparer takes a service id and the old and new value of one field and yields
``Change`` records. What no aspect module has a rule for goes through ``generic``:
a neutral change at its JSON path, so a change is never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Privilege(Enum):
    MORE = "privilege+"
    LESS = "privilege-"
    NEUTRAL = "neutral"

    @property
    def rank(self) -> int:
        """Report order: what gained power first."""
        return (Privilege.MORE, Privilege.LESS, Privilege.NEUTRAL).index(self)


class ChangeKind(Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class Change:
    service: str  # a service id, or "(plan)" for plan-wide fields
    field: str  # where: "root.readonly", "mounts[/data]", "process.env[TOKEN]", "depends.paths"
    kind: ChangeKind
    privilege: Privilege
    summary: str  # old -> new in words, values masked where they may be secret
    old: Any = None  # JSON values (None: absent); environment values masked
    new: Any = None


def one_line(value: Any, limit: int = 60) -> str:
    """A compact one-line JSON rendering (a string as it is), cut at ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(value: Any, limit: int = 60) -> str:
    """``one_line``, or "absent" for a field one side does not have (None)."""
    return "absent" if value is None else one_line(value, limit)


def list_words(items: list[str] | set[str], limit: int = 8) -> str:
    ordered = sorted(items)
    if len(ordered) <= limit:
        return ", ".join(ordered)
    return ", ".join(ordered[:limit]) + f" and {len(ordered) - limit} more"


def without(
    handled: tuple[str, ...], old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides without the keys a comparer handled itself (the rest goes generic)."""
    return (
        {k: v for k, v in old.items() if k not in handled},
        {k: v for k, v in new.items() if k not in handled},
    )


def kind_of(old: Any, new: Any) -> ChangeKind:
    if old is None:
        return ChangeKind.ADDED
    if new is None:
        return ChangeKind.REMOVED
    return ChangeKind.CHANGED


def generic(service: str, path: str, old: Any, new: Any) -> Iterator[Change]:
    """A neutral change for each differing leaf (dicts recursed, lists compared whole)."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted({*old, *new}):
            yield from generic(
                service, f"{path}.{key}" if path else key, old.get(key), new.get(key)
            )
        return
    yield neutral(service, path, old, new)


def neutral(service: str, path: str, old: Any, new: Any, limit: int = 60) -> Change:
    """A neutral change of a whole value, in words 'old → new'."""
    words = f"{short(old, limit)} → {short(new, limit)}"
    return Change(service, path, kind_of(old, new), Privilege.NEUTRAL, words, old, new)


Comparer = Callable[[str, Any, Any], Iterator[Change]]


def by_table(
    service: str,
    prefix: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    table: Mapping[str, Comparer],
) -> Iterator[Change]:
    """Compare the keys ``table`` knows with their comparer, every other key generically."""
    old = old or {}
    new = new or {}
    for key, compare in table.items():
        if old.get(key) != new.get(key):
            yield from compare(service, old.get(key), new.get(key))
    for key in sorted(({*old, *new}) - set(table)):
        yield from generic(service, f"{prefix}{key}", old.get(key), new.get(key))


def ignore(service: str, old: Any, new: Any) -> Iterator[Change]:
    """The comparer of a field that is derived, or compared elsewhere."""
    return iter(())


def uid_power(before: object, after: object) -> Privilege:
    """A process's uid changing: to root is privilege+, from root privilege-; between
    two other users, neither."""
    if before == after:
        return Privilege.NEUTRAL
    if after == 0:
        return Privilege.MORE
    if before == 0:
        return Privilege.LESS
    return Privilege.NEUTRAL


def compare_power(before: float, after: float) -> Privilege:
    if after > before:
        return Privilege.MORE
    if after < before:
        return Privilege.LESS
    return Privilege.NEUTRAL
