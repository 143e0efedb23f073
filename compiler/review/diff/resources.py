"""linux.resources: cgroup limits (a higher one is more room) and device rules (by access)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Privilege,
    compare_power,
    generic,
    kind_of,
    without,
)

# Numbers whose growth does not mean more power.
NOT_LIMITS = {"period", "swappiness", "realtimePeriod"}


def compare_resources(service: str, old: Any, new: Any) -> Iterator[Change]:
    old, new = old or {}, new or {}
    if old.get("devices") != new.get("devices"):
        yield from _devices(service, old.get("devices"), new.get("devices"))
    yield from _limits(service, "linux.resources", *without(("devices",), old, new))


def _limit_value(value: Any) -> float:
    # -1 (and absence, handled by the caller) mean "no limit".
    return float("inf") if value == -1 else float(value)


def _limits(service: str, path: str, old: Any, new: Any) -> Iterator[Change]:
    if old == new:
        return
    if isinstance(old, dict) or isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        new_map = new if isinstance(new, dict) else {}
        for key in sorted({*old_map, *new_map}):
            yield from _limits(service, f"{path}.{key}", old_map.get(key), new_map.get(key))
        return
    leaf = path.rsplit(".", 1)[-1]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new) if v)
    if not numeric or leaf in NOT_LIMITS:
        yield from generic(service, path, old, new)
        return
    before = float("inf") if old is None else _limit_value(old)
    after = float("inf") if new is None else _limit_value(new)
    # A higher limit (or none at all) gives the service more room.
    privilege = compare_power(before, after)
    words = f"{'no limit' if old is None else old} → {'no limit' if new is None else new}"
    yield Change(service, path, kind_of(old, new), privilege, words, old, new)


def _device_probes(*rule_lists: Any) -> list[tuple[str, int, int]]:
    """The devices worth asking about: each one a rule names, and "any other" of each type."""
    probes = {("c", -2, -2), ("b", -2, -2)}  # -2: a device no rule names
    for rules in rule_lists:
        for rule in rules or ():
            kind = rule.get("type", "a")
            for device_type in ("c", "b") if kind in ("a", None) else (kind,):
                probes.add((device_type, rule.get("major", -2), rule.get("minor", -2)))
    return sorted(probes)


def _device_access(rules: Any, device: tuple[str, int, int]) -> set[str]:
    """runc's device cgroup: rules apply in order, a later match overrides an earlier one."""
    device_type, major, minor = device
    access: set[str] = set()
    for rule in rules or ():
        if rule.get("type", "a") not in ("a", device_type):
            continue
        if rule.get("major", -1) not in (-1, major) or rule.get("minor", -1) not in (-1, minor):
            continue
        letters = set(rule.get("access", "rwm"))
        access = access | letters if rule.get("allow") else access - letters
    return access


def _letters(access: set[str]) -> str:
    return "".join(letter for letter in "rwm" if letter in access)


def _device_name(device: tuple[str, int, int]) -> str:
    device_type, major, minor = device
    kind = {"c": "char", "b": "block"}[device_type]
    if major == -2:
        return f"other {kind} devices"
    return f"{device_type} {'*' if major == -1 else major}:{'*' if minor == -1 else minor}"


def _devices(service: str, old: Any, new: Any) -> Iterator[Change]:
    """Device rules compared by the access they grant, not by their text."""
    widened: list[str] = []
    narrowed: list[str] = []
    for device in _device_probes(old, new):
        before, after = _device_access(old, device), _device_access(new, device)
        name = _device_name(device)
        if after - before:
            widened.append(f"{name} +{_letters(after - before)}")
        if before - after:
            narrowed.append(f"{name} -{_letters(before - after)}")
    field = "linux.resources.devices"
    if widened:
        words = "device access widened: " + "; ".join(widened)
        yield Change(service, field, ChangeKind.CHANGED, Privilege.MORE, words, old, new)
    if narrowed:
        words = "device access narrowed: " + "; ".join(narrowed)
        yield Change(service, field, ChangeKind.CHANGED, Privilege.LESS, words, old, new)
    if not widened and not narrowed:
        words = "rules rewritten; every device keeps its access"
        yield Change(service, field, ChangeKind.CHANGED, Privilege.NEUTRAL, words, old, new)
