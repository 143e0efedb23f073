"""mounts: matched by destination, classified by what they expose of the host."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Privilege,
    compare_power,
    list_words,
    short,
    without,
)

PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
PROPAGATION |= {"unbindable", "runbindable"}
SHARED = {"shared", "rshared"}
# Mount flags that take power away; losing one gives it back.
RESTRICTING_FLAGS = ("nosuid", "nodev", "noexec")
# Filesystems that expose the host (or the kernel) to the container.
HOST_FILESYSTEMS = {"sysfs", "proc", "cgroup", "cgroup2", "debugfs", "securityfs", "bpf"}
# Options an aspect of its own classifies; any other is reported as a neutral change.
CLASSIFIED_OPTIONS = PROPAGATION | set(RESTRICTING_FLAGS) | {"ro", "rw"}


def _mount_key(mounts: Any) -> dict[str, Mapping[str, Any]]:
    """Mounts by destination; a repeated destination gets '#2', '#3' (the later one wins)."""
    keyed: dict[str, Mapping[str, Any]] = {}
    seen: dict[str, int] = {}
    for mount in mounts or ():
        destination = str(mount.get("destination"))
        seen[destination] = seen.get(destination, 0) + 1
        key = destination if seen[destination] == 1 else f"{destination}#{seen[destination]}"
        keyed[key] = mount
    return keyed


def _is_bind(mount: Mapping[str, Any]) -> bool:
    options = mount.get("options") or ()
    return mount.get("type") == "bind" or "bind" in options or "rbind" in options


def _writable(mount: Mapping[str, Any]) -> bool:
    return "ro" not in (mount.get("options") or ())


def _exposes_host(mount: Mapping[str, Any]) -> bool:
    source = str(mount.get("source") or "")
    return (_is_bind(mount) and source.startswith("/")) or mount.get("type") in HOST_FILESYSTEMS


def _describe_mount(mount: Mapping[str, Any]) -> str:
    options = ",".join(mount.get("options") or ()) or "no options"
    kind = mount.get("type") or "?"
    return f"{kind} {mount.get('source') or '-'} ({options})"


def compare_mounts(service: str, old: Any, new: Any) -> Iterator[Change]:
    before, after = _mount_key(old), _mount_key(new)
    for key in [*after, *(k for k in before if k not in after)]:
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        path = f"mounts[{key}]"
        if was is None or now is None:
            yield _mount_added_or_removed(service, path, was, now)
        else:
            yield from _mount_changed(service, path, was, now)


def _mount_added_or_removed(
    service: str, path: str, was: Mapping[str, Any] | None, now: Mapping[str, Any] | None
) -> Change:
    mount = now if now is not None else was
    assert mount is not None
    risky = _exposes_host(mount) and _writable(mount)
    shared = bool(SHARED & set(mount.get("options") or ()))
    if now is not None:
        privilege = Privilege.MORE if risky or shared else Privilege.NEUTRAL
        what = "new writable host mount" if risky else "new mount"
        return Change(
            service, path, ChangeKind.ADDED, privilege, f"{what}: {_describe_mount(now)}", None, now
        )
    privilege = Privilege.LESS if risky or shared else Privilege.NEUTRAL
    what = "writable host mount removed" if risky else "mount removed"
    return Change(
        service, path, ChangeKind.REMOVED, privilege, f"{what}: {_describe_mount(mount)}", was, None
    )


def _mount_changed(
    service: str, path: str, was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[Change]:
    """One change per aspect of the mount that differs, in ``MOUNT_ASPECTS`` order."""
    for aspect in MOUNT_ASPECTS:
        for privilege, words in aspect(was, now):
            yield Change(service, path, ChangeKind.CHANGED, privilege, words, was, now)


# An aspect of one mount compared: (privilege, words) for what changed in it, if anything.
Aspect = Callable[[Mapping[str, Any], Mapping[str, Any]], Iterator[tuple[Privilege, str]]]


def _options(mount: Mapping[str, Any]) -> set[str]:
    return set(mount.get("options") or ())


def _writability(was: Mapping[str, Any], now: Mapping[str, Any]) -> Iterator[tuple[Privilege, str]]:
    writable = _writable(now)
    if _writable(was) == writable:
        return
    what = "options"
    if now.get("type") == "sysfs":
        what = "sysfs writable" if writable else "sysfs read-only"
    direction = "ro → rw" if writable else "rw → ro"
    yield (Privilege.MORE if writable else Privilege.LESS), f"{what}: {direction}"


def _propagation(was: Mapping[str, Any], now: Mapping[str, Any]) -> Iterator[tuple[Privilege, str]]:
    before, after = _options(was) & PROPAGATION, _options(now) & PROPAGATION
    if before == after:
        return
    # Shared propagation carries mounts between the host and the container: gaining it
    # is more exposure, losing it less; any other switch is neither.
    privilege = compare_power(bool(before & SHARED), bool(after & SHARED))
    yield (
        privilege,
        f"propagation {list_words(before) or 'default'} → {list_words(after) or 'default'}",
    )


def _restricting_flags(
    was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[tuple[Privilege, str]]:
    before, after = _options(was), _options(now)
    for flag in RESTRICTING_FLAGS:
        if (flag in before) != (flag in after):
            dropped = flag in before
            privilege = Privilege.MORE if dropped else Privilege.LESS
            yield privilege, f"{flag} {'dropped' if dropped else 'added'}"


def _other_options(
    was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[tuple[Privilege, str]]:
    before, after = _options(was) - CLASSIFIED_OPTIONS, _options(now) - CLASSIFIED_OPTIONS
    if before == after:
        return
    words = [*(f"+{o}" for o in sorted(after - before)), *(f"-{o}" for o in sorted(before - after))]
    yield Privilege.NEUTRAL, f"options {' '.join(words)}"


def _option_order(
    was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[tuple[Privilege, str]]:
    # The same set of options written in another order (or with one repeated).
    if _options(was) == _options(now) and (was.get("options") or []) != (now.get("options") or []):
        yield Privilege.NEUTRAL, "options reordered"


def _source_and_type(
    was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[tuple[Privilege, str]]:
    for key in ("source", "type"):
        if was.get(key) != now.get(key):
            yield Privilege.NEUTRAL, f"{key} {was.get(key) or '-'} → {now.get(key) or '-'}"


def _other_fields(
    was: Mapping[str, Any], now: Mapping[str, Any]
) -> Iterator[tuple[Privilege, str]]:
    rest_old, rest_new = without(("options", "source", "type"), was, now)
    if rest_old != rest_new:
        yield Privilege.NEUTRAL, f"{short(rest_old)} → {short(rest_new)}"


MOUNT_ASPECTS: tuple[Aspect, ...] = (
    _writability,
    _propagation,
    _restricting_flags,
    _other_options,
    _option_order,
    _source_and_type,
    _other_fields,
)
