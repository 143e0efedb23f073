"""process: arguments, environment (values masked), capabilities, noNewPrivileges, user."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from extsvc.compiler.format.diagnostics import SECRET_MASK
from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Comparer,
    Privilege,
    by_table,
    generic,
    kind_of,
    list_words,
    neutral,
    short,
    uid_power,
    without,
)


def compare_process(service: str, old: Any, new: Any, show_values: bool) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "args": _args,
        "env": partial(_environment, show_values=show_values),
        "capabilities": _capabilities,
        "noNewPrivileges": _no_new_privileges,
        "user": _user,
    }
    yield from by_table(service, "process.", old, new, table)


def _args(service: str, old: Any, new: Any) -> Iterator[Change]:
    yield neutral(service, "process.args", old, new, limit=80)


def _env_pairs(entries: Any) -> list[tuple[str, str]]:
    return [(e.partition("=")[0], e.partition("=")[2]) for e in entries or () if isinstance(e, str)]


def _env_values(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each key's values, in order (a duplicated key keeps them all)."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return values


def _shown_env(values: list[str] | None, show_values: bool) -> Any:
    """What a change carries for one key's values: masked unless ``show_values``."""
    if values is None:
        return None
    if show_values:
        return values[0] if len(values) == 1 else values
    return SECRET_MASK


def _env_words(was: list[str] | None, now: list[str] | None, show_values: bool) -> str:
    def shown(values: list[str] | None) -> str:
        return short(_shown_env(values, show_values))

    if was is None:
        return "added" + (f" = {shown(now)}" if show_values else " (value masked)")
    if now is None:
        return "removed"
    if show_values:
        return f"{shown(was)} → {shown(now)}"
    return "value changed (masked; --show-values shows it)"


def _environment(service: str, old: Any, new: Any, show_values: bool) -> Iterator[Change]:
    """Keys always; values only with ``show_values`` (they are often secrets)."""
    old_pairs, new_pairs = _env_pairs(old), _env_pairs(new)
    old_values, new_values = _env_values(old_pairs), _env_values(new_pairs)
    # Keys in the order the new environment lists them, then the removed ones.
    keys = list(dict.fromkeys([k for k, _ in new_pairs] + [k for k, _ in old_pairs]))
    for key in keys:
        was, now = old_values.get(key), new_values.get(key)
        if was == now:
            continue
        yield Change(
            service,
            f"process.env[{key}]",
            kind_of(was, now),
            Privilege.NEUTRAL,
            _env_words(was, now, show_values),
            _shown_env(was, show_values),
            _shown_env(now, show_values),
        )
    if old_values == new_values and old_pairs != new_pairs:
        yield Change(
            service,
            "process.env",
            ChangeKind.CHANGED,
            Privilege.NEUTRAL,
            "same entries in a different order (the first of a duplicated key wins)",
            [k for k, _ in old_pairs],
            [k for k, _ in new_pairs],
        )


CAPABILITY_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def _capabilities(service: str, old: Any, new: Any) -> Iterator[Change]:
    """Grouped by capability: 'CAP_SYS_ADMIN gained (bounding, effective, permitted)'."""
    old, new = old or {}, new or {}
    gained: dict[str, list[str]] = {}
    lost: dict[str, list[str]] = {}
    for set_name in CAPABILITY_SETS:
        before, after = set(old.get(set_name) or ()), set(new.get(set_name) or ())
        for name in after - before:
            gained.setdefault(name, []).append(set_name)
        for name in before - after:
            lost.setdefault(name, []).append(set_name)
    for names_by_sets, kind, privilege, verb in (
        (gained, ChangeKind.ADDED, Privilege.MORE, "gained"),
        (lost, ChangeKind.REMOVED, Privilege.LESS, "dropped"),
    ):
        groups: dict[tuple[str, ...], list[str]] = {}
        for name, sets in names_by_sets.items():
            groups.setdefault(tuple(sets), []).append(name)
        for set_names, names in sorted(groups.items()):
            yield Change(
                service,
                "process.capabilities",
                kind,
                privilege,
                f"{verb} {list_words(names)} ({', '.join(set_names)})",
                sorted(names) if kind is ChangeKind.REMOVED else None,
                sorted(names) if kind is ChangeKind.ADDED else None,
            )
    yield from generic(service, "process.capabilities", *without(CAPABILITY_SETS, old, new))


def _no_new_privileges(service: str, old: Any, new: Any) -> Iterator[Change]:
    was, now = bool(old), bool(new)
    if was == now:
        return
    yield Change(
        service,
        "process.noNewPrivileges",
        ChangeKind.CHANGED,
        Privilege.MORE if was else Privilege.LESS,
        "setuid binaries can gain privileges again" if was else "no new privileges (setuid off)",
        old,
        new,
    )


def _user(service: str, old: Any, new: Any) -> Iterator[Change]:
    privilege = uid_power((old or {}).get("uid", 0), (new or {}).get("uid", 0))
    yield Change(
        service,
        "process.user",
        kind_of(old, new),
        privilege,
        f"{short(old)} → {short(new)}",
        old,
        new,
    )
