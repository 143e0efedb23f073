"""linux.seccomp: summarised as the syscalls whose fate changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Privilege,
    compare_power,
    generic,
    kind_of,
    list_words,
    without,
)

ALLOW = "SCMP_ACT_ALLOW"
CONDITIONAL = "allowed with argument conditions"


def syscall_fates(profile: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """(default action, syscall -> 'SCMP_ACT_ALLOW' | CONDITIONAL | another action).

    A syscall not listed gets the default action; one allowed by an unconditional
    rule is allowed whatever other rules say.
    """
    if profile is None:
        return "no seccomp", {}
    fates: dict[str, str] = {}
    for rule in profile.get("syscalls") or ():
        action = rule.get("action", "")
        fate = CONDITIONAL if action == ALLOW and rule.get("args") else action
        for name in rule.get("names") or ():
            if fates.get(name) == ALLOW:
                continue
            if fate == ALLOW or name not in fates:
                fates[name] = fate
            elif fate == CONDITIONAL:
                fates[name] = CONDITIONAL
    return str(profile.get("defaultAction", "")), fates


def _power(fate: str) -> int:
    """How much a fate lets through: allowed > allowed with conditions > anything else."""
    return {ALLOW: 2, "SCMP_ACT_LOG": 2, CONDITIONAL: 1}.get(fate, 0)


def compare_seccomp(service: str, old: Any, new: Any) -> Iterator[Change]:
    field = "linux.seccomp"
    if old is None or new is None:
        yield Change(
            service,
            field,
            kind_of(old, new),
            Privilege.MORE if new is None else Privilege.LESS,
            "seccomp disabled: every syscall allowed" if new is None else "seccomp enabled",
        )
        return
    old_default, old_fates = syscall_fates(old)
    new_default, new_fates = syscall_fates(new)
    if old_default != new_default:
        yield Change(
            service,
            f"{field}.defaultAction",
            ChangeKind.CHANGED,
            compare_power(_power(old_default), _power(new_default)),
            f"{old_default} → {new_default}",
            old_default,
            new_default,
        )
    buckets: dict[Privilege, dict[str, list[str]]] = {p: {} for p in Privilege}
    for name in sorted({*old_fates, *new_fates}):
        was = old_fates.get(name, old_default)
        now = new_fates.get(name, new_default)
        if was == now:
            continue
        privilege = compare_power(_power(was), _power(now))
        buckets[privilege].setdefault(f"{_fate_words(was)} → {_fate_words(now)}", []).append(name)
    headline = {
        Privilege.MORE: "syscalls newly allowed",
        Privilege.LESS: "syscalls newly denied",
        Privilege.NEUTRAL: "syscalls handled differently",
    }
    for privilege, by_transition in buckets.items():
        for transition, names in sorted(by_transition.items()):
            yield Change(
                service,
                f"{field}.syscalls",
                ChangeKind.CHANGED,
                privilege,
                f"{headline[privilege]}: {list_words(names)} ({transition})",
                None,
                sorted(names),
            )
    rest_old, rest_new = without(("defaultAction", "syscalls"), old, new)
    yield from generic(service, field, rest_old, rest_new)
    if old_default == new_default and old_fates == new_fates and rest_old == rest_new:
        yield Change(
            service,
            f"{field}.syscalls",
            ChangeKind.CHANGED,
            Privilege.NEUTRAL,
            "rules rewritten; every syscall keeps its fate",
        )


def _fate_words(fate: str) -> str:
    return {ALLOW: "allowed", CONDITIONAL: "conditional"}.get(fate, fate)
