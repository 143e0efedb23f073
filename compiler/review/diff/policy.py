"""A service's x-extsvc policy (its plan entry's ``policy``): the health check, the start
and stop timeouts, ``optional``, the restart limit.

Durations read as they are written (``30s → 10s``), and a policy a service does not
set is named by what then applies (``the executor's --stop-timeout``). A health check
with a process of its own is a process with power: a check that gains a capability or
comes to run as root is privilege+, as the service's own process would be
(``process``); one that goes back to the service's own process is privilege-.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from extsvc.compiler.format.durations import short_duration
from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Comparer,
    Privilege,
    by_table,
    ignore,
    kind_of,
    list_words,
    neutral,
    short,
    uid_power,
)

# What applies when the policy does not say.
_UNSET = {
    "startTimeout": "none (waits for ever)",
    "stopTimeout": "the executor's --stop-timeout",
    "restartLimit": "none (restarts for ever)",
}


def compare_policy(
    service: str, old: Any, new: Any, service_uids: tuple[int, int] = (0, 0)
) -> Iterator[Change]:
    """``service_uids``: the uid of the service's own process, old and new (config.json),
    which a health check without a ``user`` runs as."""
    table: dict[str, Comparer] = {
        "health": partial(_health, service_uids=service_uids),
        "startTimeout": _duration("startTimeout"),
        "stopTimeout": _duration("stopTimeout"),
        "optional": _optional,
        "restartLimit": _restart_limit,
    }
    yield from by_table(service, "policy.", old, new, table)


def _said(
    service: str,
    field: str,
    old: Any,
    new: Any,
    words: str,
    privilege: Privilege = Privilege.NEUTRAL,
) -> Change:
    return Change(service, field, kind_of(old, new), privilege, words, old, new)


def _duration(key: str, unset: str | None = None) -> Comparer:
    def compare(service: str, old: Any, new: Any) -> Iterator[Change]:
        def words(value: Any) -> str:
            if value is None:
                return unset or _UNSET[key]
            return short_duration(value) if isinstance(value, int | float) else short(value)

        yield _said(service, f"policy.{key}", old, new, f"{words(old)} → {words(new)}")

    return compare


def _optional(service: str, old: Any, new: Any) -> Iterator[Change]:
    if bool(old) != bool(new):
        words = "dependents are Skipped when it fails" if new else "required again"
        yield _said(service, "policy.optional", old, new, words)


def _limit_words(limit: Any) -> str:
    if limit is None:
        return _UNSET["restartLimit"]
    if isinstance(limit, dict) and isinstance(limit.get("window"), int | float):
        return f"{limit.get('count')} failures in {short_duration(limit['window'])}"
    return short(limit)


def _restart_limit(service: str, old: Any, new: Any) -> Iterator[Change]:
    words = f"{_limit_words(old)} → {_limit_words(new)}"
    yield _said(service, "policy.restartLimit", old, new, words)


def _check_words(check: dict[str, Any]) -> str:
    command = " ".join(str(part) for part in check.get("exec") or ())
    interval = check.get("interval")
    every = f" every {short_duration(interval)}" if isinstance(interval, int | float) else ""
    restart = ", restarts it when unhealthy" if check.get("onUnhealthy") == "restart" else ""
    user = check.get("user")
    runs_as = f", as uid {user.get('uid')}" if isinstance(user, dict) else ""
    return f"{short(command, 60)}{every}{runs_as}{restart}"


def _health(service: str, old: Any, new: Any, service_uids: tuple[int, int]) -> Iterator[Change]:
    """A check added or removed is one change; a changed check, one per field. Its own
    process (``user``, ``capabilities``) is compared as a process, after the rest."""
    if old is None or new is None:
        added = old is None
        check = new if added else old
        words = f"{'+' if added else '-'} health check {_check_words(check)}"
        yield _said(service, "policy.health", old, new, words)
        # Against no check at all, the user matters only where the check is root and
        # the service is not; its capabilities are all its own.
        user, service_uid = check.get("user"), service_uids[1 if added else 0]
        if isinstance(user, dict) and user.get("uid") == 0 and service_uid != 0:
            was, now = (None, user) if added else (user, None)
            yield from _check_user(service, was, now, (service_uid, service_uid))
        capabilities = check.get("capabilities")
        yield from _check_capabilities(
            service, None if added else capabilities, capabilities if added else None, False
        )
        return
    table: dict[str, Comparer] = {
        "exec": lambda s, o, n: iter([neutral(s, "policy.health.exec", o, n, limit=80)]),
        "interval": _duration("health.interval", "absent"),
        "timeout": _duration("health.timeout", "absent"),
        "startPeriod": _duration("health.startPeriod", "absent"),
        "user": ignore,
        "capabilities": ignore,
    }
    yield from by_table(service, "policy.health.", old, new, table)
    yield from _check_user(service, old.get("user"), new.get("user"), service_uids)
    yield from _check_capabilities(service, old.get("capabilities"), new.get("capabilities"), True)


def _check_capabilities(
    service: str, before: Any, after: Any, check_stays: bool
) -> Iterator[Change]:
    """The check's own capability set (absent: it has the service's); ``check_stays``:
    the check is there on both sides."""
    if before == after:
        return
    gained = sorted(set(after or ()) - set(before or ()))
    dropped = sorted(set(before or ()) - set(after or ()))
    field = "policy.health.capabilities"
    if gained:
        words = f"the check holds {list_words(gained)} (its own set, not the service's)"
        yield Change(service, field, ChangeKind.ADDED, Privilege.MORE, words, None, gained)
    if dropped:
        words = f"the check no longer holds {list_words(dropped)}"
        if after is None and check_stays:
            words += " (it runs with the service's capabilities)"
        yield Change(service, field, ChangeKind.REMOVED, Privilege.LESS, words, dropped, None)


def _check_user(
    service: str, old: Any, new: Any, service_uids: tuple[int, int]
) -> Iterator[Change]:
    """The check's own user (absent: the service's, of ``service_uids``)."""
    if old == new:
        return

    def uid(user: Any, service_uid: int) -> Any:
        return user.get("uid") if isinstance(user, dict) else service_uid

    def words(user: Any, service_uid: int) -> str:
        if user is None:
            return f"the service's user (uid {service_uid})"
        if isinstance(user, dict):
            return f"uid {user.get('uid')}, gid {user.get('gid')}"
        return short(user)

    privilege = uid_power(uid(old, service_uids[0]), uid(new, service_uids[1]))
    was, now = words(old, service_uids[0]), words(new, service_uids[1])
    yield _said(service, "policy.health.user", old, new, f"{was} → {now}", privilege)
