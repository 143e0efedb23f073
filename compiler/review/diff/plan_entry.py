"""A service's plan.json entry: dependencies, restart, level, mount sources to create, its
x-extsvc policy (``policy``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Comparer,
    Privilege,
    by_table,
    ignore,
    neutral,
)
from extsvc.compiler.review.diff.policy import compare_policy


def compare_plan_entry(
    service: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    service_uids: tuple[int, int] = (0, 0),
) -> Iterator[Change]:
    """``service_uids``: the uid the service's process runs as, old and new (config.json)."""
    table: dict[str, Comparer] = {
        "depends": _depends,
        "restart": _neutral_value("restart"),
        "logToConsole": _neutral_value("logToConsole"),
        "level": _neutral_value("level"),
        "mountSources": _list_items("mountSources", "created before start"),
        "policy": partial(compare_policy, service_uids=service_uids),
        # Derived: the digest of config.json, the bundle directory from the name.
        "digest": ignore,
        "bundle": ignore,
        "name": ignore,
    }
    yield from by_table(service, "", old, new, table)


def _neutral_value(path: str) -> Comparer:
    def compare(service: str, old: Any, new: Any) -> Iterator[Change]:
        yield neutral(service, path, old, new)

    return compare


def _item_words(item: Any) -> str:
    """A list item as a change names it: a mount source with an owner and mode (plan.json
    writes it as an object) reads "/var/lib/x (owner 330:330, mode 0750)"."""
    if isinstance(item, dict) and {"path", "uid", "gid", "mode"} <= item.keys():
        return f"{item['path']} (owner {item['uid']}:{item['gid']}, mode {item['mode']})"
    return str(item)


def _list_items(path: str, what: str = "") -> Comparer:
    def compare(service: str, old: Any, new: Any) -> Iterator[Change]:
        before, after = list(old or ()), list(new or ())
        added = [item for item in after if item not in before]
        removed = [item for item in before if item not in after]
        suffix = f" ({what})" if what else ""
        if added:
            words = ", ".join(map(_item_words, added))
            yield Change(
                service,
                path,
                ChangeKind.ADDED,
                Privilege.NEUTRAL,
                f"+ {words}{suffix}",
                None,
                added,
            )
        if removed:
            words = ", ".join(map(_item_words, removed))
            yield Change(
                service, path, ChangeKind.REMOVED, Privilege.NEUTRAL, f"- {words}", removed
            )
        if not added and not removed:
            yield Change(
                service, path, ChangeKind.CHANGED, Privilege.NEUTRAL, "reordered", old, new
            )

    return compare


def _depends(service: str, old: Any, new: Any) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        key: _list_items(f"depends.{key}")
        for key in ("services", "hostServices", "paths", "network")
    }
    table["time"] = _neutral_value("depends.time")
    table["configuration"] = _neutral_value("depends.configuration")
    table["environmentFile"] = _neutral_value("depends.environmentFile")
    yield from by_table(service, "depends.", old, new, table)
