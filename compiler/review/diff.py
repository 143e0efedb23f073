"""Diff: two compiled outputs -> the list of semantic changes, each classified by privilege.

Pure: it takes two ``CompiledOutput`` values (already loaded or compiled in
memory by ``compiler.review.outputs``) and returns ``Change`` records; rendering is in
``compiler.review.diffreport`` and all I/O (directories, git) in the CLI's edge.

What a reviewer needs is the one change that matters, not 900 lines of JSON:
mounts are matched by destination, environment values are masked, seccomp is
summarised as the syscalls whose fate changed, and every change says whether
it gives the service more power or exposure (``privilege+``), less
(``privilege-``), or neither (``neutral``). Fields this module has no special
rule for still show up, as a neutral change at their JSON path: a change is
never silently dropped. Derived fields (bundle digests, the compiler version,
the plan's levels list, which repeats each service's ``level``) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from extsvc.compiler.defaults import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from extsvc.compiler.format.diagnostics import SECRET_MASK
from extsvc.compiler.format.exitcodes import EXIT_DIFF_CHANGED, EXIT_OK
from extsvc.compiler.format.plan import CONFIG_FILE, ORIGINS_FILE, sha256_digest


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


@dataclass(frozen=True)
class CompiledOutput:
    """What the diff compares: the plan and every service's config.json, parsed."""

    plan: Mapping[str, Any]
    configs: Mapping[str, Mapping[str, Any]]  # service id -> config.json
    label: str = ""
    # service id -> the origins document compile wrote beside config.json (explain).
    origins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The files as read or compiled (relative path -> bytes).
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def service_ids(self) -> list[str]:
        return sorted(self.plan.get("services", {}))

    def plan_entry(self, service_id: str) -> Mapping[str, Any]:
        entry: Mapping[str, Any] = self.plan.get("services", {}).get(service_id, {})
        return entry


PLAN_SCOPE = "(plan)"


def diff_outputs(
    old: CompiledOutput, new: CompiledOutput, *, show_values: bool = False
) -> list[Change]:
    """Every semantic change from ``old`` to ``new``, in report order (privilege+ first)."""
    changes: list[Change] = list(_plan_wide(old.plan, new.plan))
    for service_id in sorted({*old.service_ids(), *new.service_ids()}):
        changes.extend(_service(service_id, old, new, show_values))
    return sort_changes(changes)


def sort_changes(changes: list[Change]) -> list[Change]:
    """Services that gained privilege first, then by id; within one, privilege+ first.

    The order within a rank is the order the comparers produced (stable).
    """
    best: dict[str, int] = {}
    for change in changes:
        best[change.service] = min(best.get(change.service, 9), change.privilege.rank)
    indexed = list(enumerate(changes))
    indexed.sort(
        key=lambda item: (
            best[item[1].service],
            item[1].service,
            item[1].privilege.rank,
            item[0],
        )
    )
    return [change for _, change in indexed]


def exit_status(changes: list[Change], fail_on: str) -> int:
    """diff(1)'s convention: 1 when there is something to report, else 0.

    ``fail_on="privilege"`` makes only privilege+ changes count (a CI gate).
    """
    counted = [c for c in changes if fail_on != "privilege" or c.privilege is Privilege.MORE]
    return EXIT_DIFF_CHANGED if counted else EXIT_OK


# ----- helpers


def one_line(value: Any, limit: int = 60) -> str:
    """A compact one-line JSON rendering (a string as it is), cut at ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(value: Any, limit: int = 60) -> str:
    """``one_line``, or "absent" for a field one side does not have (None)."""
    return "absent" if value is None else one_line(value, limit)


def _list_words(items: list[str] | set[str], limit: int = 8) -> str:
    ordered = sorted(items)
    if len(ordered) <= limit:
        return ", ".join(ordered)
    return ", ".join(ordered[:limit]) + f" and {len(ordered) - limit} more"


def _without(
    handled: tuple[str, ...], old: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides without the keys a comparer handled itself (the rest goes generic)."""
    return (
        {k: v for k, v in old.items() if k not in handled},
        {k: v for k, v in new.items() if k not in handled},
    )


def _kind(old: Any, new: Any) -> ChangeKind:
    if old is None:
        return ChangeKind.ADDED
    if new is None:
        return ChangeKind.REMOVED
    return ChangeKind.CHANGED


def _generic(service: str, path: str, old: Any, new: Any) -> Iterator[Change]:
    """A neutral change for each differing leaf (dicts recursed, lists compared whole)."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted({*old, *new}):
            yield from _generic(
                service, f"{path}.{key}" if path else key, old.get(key), new.get(key)
            )
        return
    yield _neutral(service, path, old, new)


def _neutral(service: str, path: str, old: Any, new: Any, limit: int = 60) -> Change:
    """A neutral change of a whole value, in words 'old → new'."""
    words = f"{short(old, limit)} → {short(new, limit)}"
    return Change(service, path, _kind(old, new), Privilege.NEUTRAL, words, old, new)


Comparer = Callable[[str, Any, Any], Iterator[Change]]


def _by_table(
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
        yield from _generic(service, f"{prefix}{key}", old.get(key), new.get(key))


# ----- plan-wide and per-service entry points


def _plan_wide(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    # Derived or per-service data is compared elsewhere (or not at all).
    skip = {"services", "levels", "compiler"}
    for key in sorted(({*old, *new}) - skip):
        yield from _generic(PLAN_SCOPE, key, old.get(key), new.get(key))


def _service(
    service_id: str, old: CompiledOutput, new: CompiledOutput, show_values: bool
) -> Iterator[Change]:
    old_entry, new_entry = old.plan_entry(service_id), new.plan_entry(service_id)
    if not old_entry:
        source = new_entry.get("source", "?")
        yield Change(
            service_id,
            "service",
            ChangeKind.ADDED,
            Privilege.MORE,
            f"new service from {source} (restart {new_entry.get('restart', '?')}): "
            "a new container with its own privileges",
            None,
            source,
        )
        return
    if not new_entry:
        source = old_entry.get("source", "?")
        yield Change(
            service_id,
            "service",
            ChangeKind.REMOVED,
            Privilege.LESS,
            f"service removed (was from {source})",
            source,
            None,
        )
        return
    yield from _config(
        service_id, old.configs.get(service_id, {}), new.configs.get(service_id, {}), show_values
    )
    yield from _plan_entry(service_id, old_entry, new_entry)
    yield from _bundle_files(service_id, old, new)


# Files of a bundle the comparers above already read.
READ_BUNDLE_FILES = (CONFIG_FILE, ORIGINS_FILE)


def _bundle_file_digests(output: CompiledOutput, service_id: str) -> dict[str, str]:
    bundle = str(output.plan_entry(service_id).get("bundle", ""))
    prefix = bundle + "/"
    return {
        name.removeprefix(prefix): sha256_digest(data)
        for name, data in output.files.items()
        if name.startswith(prefix) and name.removeprefix(prefix) not in READ_BUNDLE_FILES
    }


def _bundle_files(service: str, old: CompiledOutput, new: CompiledOutput) -> Iterator[Change]:
    """Other files compile wrote into the bundle (ExtensionServiceConfig files baked in).

    Compared by digest only: their content is configuration and may be secret.
    """
    before, after = _bundle_file_digests(old, service), _bundle_file_digests(new, service)
    for name in sorted({*before, *after}):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        words = {
            ChangeKind.ADDED: "new file in the bundle",
            ChangeKind.REMOVED: "file removed from the bundle",
            ChangeKind.CHANGED: "content changed (not shown: it may be secret)",
        }[_kind(was, now)]
        yield Change(
            service,
            f"bundle[{name}]",
            _kind(was, now),
            Privilege.NEUTRAL,
            words,
            was,
            now,
        )


# ----- config.json


def _config(
    service: str, old: Mapping[str, Any], new: Mapping[str, Any], show_values: bool
) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "root": _root,
        "process": partial(_process, show_values=show_values),
        "mounts": _mounts,
        "linux": _linux,
    }
    yield from _by_table(service, "", old, new, table)


def _root(service: str, old: Any, new: Any) -> Iterator[Change]:
    old, new = old or {}, new or {}
    was, now = bool(old.get("readonly")), bool(new.get("readonly"))
    if was != now:
        yield Change(
            service,
            "root.readonly",
            ChangeKind.CHANGED,
            Privilege.MORE if was else Privilege.LESS,
            "rootfs read-only → writable" if was else "rootfs writable → read-only",
            old.get("readonly"),
            new.get("readonly"),
        )
    yield from _generic(service, "root", *_without(("readonly",), old, new))


# process


def _process(service: str, old: Any, new: Any, show_values: bool) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "args": _args,
        "env": partial(_environment, show_values=show_values),
        "capabilities": _capabilities,
        "noNewPrivileges": _no_new_privileges,
        "user": _user,
    }
    yield from _by_table(service, "process.", old, new, table)


def _args(service: str, old: Any, new: Any) -> Iterator[Change]:
    yield _neutral(service, "process.args", old, new, limit=80)


def _env_pairs(entries: Any) -> list[tuple[str, str]]:
    return [(e.partition("=")[0], e.partition("=")[2]) for e in entries or () if isinstance(e, str)]


def _environment(service: str, old: Any, new: Any, show_values: bool) -> Iterator[Change]:
    """Keys always; values only with ``show_values`` (they are often secrets)."""
    old_pairs, new_pairs = _env_pairs(old), _env_pairs(new)
    old_values: dict[str, list[str]] = {}
    new_values: dict[str, list[str]] = {}
    for key, value in old_pairs:
        old_values.setdefault(key, []).append(value)
    for key, value in new_pairs:
        new_values.setdefault(key, []).append(value)

    def shown(values: list[str] | None) -> Any:
        if values is None:
            return None
        if show_values:
            return values[0] if len(values) == 1 else values
        return SECRET_MASK

    # Keys in the order the new environment lists them, then the removed ones.
    keys = list(dict.fromkeys([k for k, _ in new_pairs] + [k for k, _ in old_pairs]))
    for key in keys:
        was, now = old_values.get(key), new_values.get(key)
        if was == now:
            continue
        if was is None:
            words = "added" + (f" = {short(shown(now))}" if show_values else " (value masked)")
        elif now is None:
            words = "removed"
        elif show_values:
            words = f"{short(shown(was))} → {short(shown(now))}"
        else:
            words = "value changed (masked; --show-values shows it)"
        yield Change(
            service,
            f"process.env[{key}]",
            _kind(was, now),
            Privilege.NEUTRAL,
            words,
            shown(was),
            shown(now),
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
                f"{verb} {_list_words(names)} ({', '.join(set_names)})",
                sorted(names) if kind is ChangeKind.REMOVED else None,
                sorted(names) if kind is ChangeKind.ADDED else None,
            )
    yield from _generic(service, "process.capabilities", *_without(CAPABILITY_SETS, old, new))


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
    old_uid = (old or {}).get("uid", 0)
    new_uid = (new or {}).get("uid", 0)
    if old_uid == new_uid:
        privilege = Privilege.NEUTRAL
    elif new_uid == 0:
        privilege = Privilege.MORE
    elif old_uid == 0:
        privilege = Privilege.LESS
    else:
        privilege = Privilege.NEUTRAL
    yield Change(
        service,
        "process.user",
        _kind(old, new),
        privilege,
        f"{short(old)} → {short(new)}",
        old,
        new,
    )


# mounts

PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
PROPAGATION |= {"unbindable", "runbindable"}
SHARED = {"shared", "rshared"}
# Mount flags that take power away; losing one gives it back.
RESTRICTING_FLAGS = ("nosuid", "nodev", "noexec")
# Filesystems that expose the host (or the kernel) to the container.
HOST_FILESYSTEMS = {"sysfs", "proc", "cgroup", "cgroup2", "debugfs", "securityfs", "bpf"}


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


def _mounts(service: str, old: Any, new: Any) -> Iterator[Change]:
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
    def change(privilege: Privilege, words: str) -> Change:
        return Change(service, path, ChangeKind.CHANGED, privilege, words, was, now)

    sysfs = now.get("type") == "sysfs"
    if _writable(was) != _writable(now):
        direction = "ro → rw" if _writable(now) else "rw → ro"
        what = "sysfs writable" if sysfs and _writable(now) else "options"
        if sysfs and not _writable(now):
            what = "sysfs read-only"
        yield change(
            Privilege.MORE if _writable(now) else Privilege.LESS,
            f"{what}: {direction}",
        )
    old_options, new_options = set(was.get("options") or ()), set(now.get("options") or ())
    old_prop, new_prop = old_options & PROPAGATION, new_options & PROPAGATION
    if old_prop != new_prop:
        if new_prop & SHARED and not old_prop & SHARED:
            privilege = Privilege.MORE
        elif old_prop & SHARED and not new_prop & SHARED:
            privilege = Privilege.LESS
        else:
            privilege = Privilege.NEUTRAL
        before, after = _list_words(old_prop) or "default", _list_words(new_prop) or "default"
        yield change(privilege, f"propagation {before} → {after}")
    for flag in RESTRICTING_FLAGS:
        if (flag in old_options) != (flag in new_options):
            yield change(
                Privilege.MORE if flag in old_options else Privilege.LESS,
                f"{flag} {'dropped' if flag in old_options else 'added'}",
            )
    handled = PROPAGATION | set(RESTRICTING_FLAGS) | {"ro", "rw"}
    if (old_options - handled) != (new_options - handled):
        removed = sorted((old_options - handled) - new_options)
        added = sorted((new_options - handled) - old_options)
        words = " ".join([*(f"+{o}" for o in added), *(f"-{o}" for o in removed)])
        yield change(Privilege.NEUTRAL, f"options {words}")
    elif (was.get("options") or []) != (now.get("options") or []) and old_options == new_options:
        yield change(Privilege.NEUTRAL, "options reordered")
    if was.get("source") != now.get("source"):
        yield change(
            Privilege.NEUTRAL, f"source {was.get('source') or '-'} → {now.get('source') or '-'}"
        )
    if was.get("type") != now.get("type"):
        yield change(Privilege.NEUTRAL, f"type {was.get('type') or '-'} → {now.get('type') or '-'}")
    rest_old, rest_new = _without(("options", "source", "type"), was, now)
    if rest_old != rest_new:
        yield change(Privilege.NEUTRAL, f"{short(rest_old)} → {short(rest_new)}")


# linux


def _linux(service: str, old: Any, new: Any) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "maskedPaths": _path_list("linux.maskedPaths", "masked", DEFAULT_MASKED_PATHS),
        "readonlyPaths": _path_list("linux.readonlyPaths", "read-only", DEFAULT_READONLY_PATHS),
        "namespaces": _namespaces,
        "rootfsPropagation": _rootfs_propagation,
        "seccomp": _seccomp,
        "resources": _resources,
    }
    yield from _by_table(service, "linux.", old, new, table)


def _path_list(path: str, adjective: str, defaults: tuple[str, ...]) -> Comparer:
    def describe(paths: Any) -> str:
        if not paths:
            return "none"
        if tuple(paths) == defaults:
            return "containerd defaults"
        return f"{len(paths)} path{'s' * (len(paths) != 1)}"

    def compare(service: str, old: Any, new: Any) -> Iterator[Change]:
        before, after = set(old or ()), set(new or ())
        overall = f"{describe(old)} → {describe(new)}"
        if before - after:
            yield Change(
                service,
                path,
                ChangeKind.REMOVED,
                Privilege.MORE,
                f"no longer {adjective}: {_list_words(before - after)} ({overall})",
                sorted(before - after),
                None,
            )
        if after - before:
            yield Change(
                service,
                path,
                ChangeKind.ADDED,
                Privilege.LESS,
                f"newly {adjective}: {_list_words(after - before)} ({overall})",
                None,
                sorted(after - before),
            )
        if before == after:
            yield Change(
                service, path, ChangeKind.CHANGED, Privilege.NEUTRAL, "reordered", old, new
            )

    return compare


def _namespaces(service: str, old: Any, new: Any) -> Iterator[Change]:
    before = {n.get("type"): n for n in old or ()}
    after = {n.get("type"): n for n in new or ()}
    for kind in sorted({*before, *after}, key=str):
        was, now = before.get(kind), after.get(kind)
        if was == now:
            continue
        field = f"linux.namespaces[{kind}]"
        if now is None:
            yield Change(
                service,
                field,
                ChangeKind.REMOVED,
                Privilege.MORE,
                f"shares the host's {kind} namespace",
                was,
                None,
            )
        elif was is None:
            privilege = Privilege.MORE if now.get("path") else Privilege.LESS
            words = (
                f"joins the existing {kind} namespace {now['path']}"
                if now.get("path")
                else f"own {kind} namespace (no longer the host's)"
            )
            yield Change(service, field, ChangeKind.ADDED, privilege, words, None, now)
        else:
            privilege = Privilege.MORE if now.get("path") else Privilege.LESS
            yield Change(
                service,
                field,
                ChangeKind.CHANGED,
                privilege,
                f"path {was.get('path') or 'new namespace'} → {now.get('path') or 'new namespace'}",
                was,
                now,
            )


def _rootfs_propagation(service: str, old: Any, new: Any) -> Iterator[Change]:
    if new in SHARED and old not in SHARED:
        privilege = Privilege.MORE
    elif old in SHARED and new not in SHARED:
        privilege = Privilege.LESS
    else:
        privilege = Privilege.NEUTRAL
    yield Change(
        service,
        "linux.rootfsPropagation",
        _kind(old, new),
        privilege,
        f"{old or 'default (private)'} → {new or 'default (private)'}",
        old,
        new,
    )


# seccomp

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


def _seccomp(service: str, old: Any, new: Any) -> Iterator[Change]:
    field = "linux.seccomp"
    if old is None or new is None:
        yield Change(
            service,
            field,
            _kind(old, new),
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
            _compare_power(_power(old_default), _power(new_default)),
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
        privilege = _compare_power(_power(was), _power(now))
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
                f"{headline[privilege]}: {_list_words(names)} ({transition})",
                None,
                sorted(names),
            )
    rest_old, rest_new = _without(("defaultAction", "syscalls"), old, new)
    yield from _generic(service, field, rest_old, rest_new)
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


def _compare_power(before: float, after: float) -> Privilege:
    if after > before:
        return Privilege.MORE
    if after < before:
        return Privilege.LESS
    return Privilege.NEUTRAL


# resources (cgroup limits and device rules)

# Numbers whose growth does not mean more power.
NOT_LIMITS = {"period", "swappiness", "realtimePeriod"}


def _resources(service: str, old: Any, new: Any) -> Iterator[Change]:
    old, new = old or {}, new or {}
    if old.get("devices") != new.get("devices"):
        yield from _devices(service, old.get("devices"), new.get("devices"))
    yield from _limits(service, "linux.resources", *_without(("devices",), old, new))


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
        yield from _generic(service, path, old, new)
        return
    before = float("inf") if old is None else _limit_value(old)
    after = float("inf") if new is None else _limit_value(new)
    # A higher limit (or none at all) gives the service more room.
    privilege = _compare_power(before, after)
    words = f"{'no limit' if old is None else old} → {'no limit' if new is None else new}"
    yield Change(service, path, _kind(old, new), privilege, words, old, new)


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


# ----- plan.json entries


def _plan_entry(service: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "depends": _depends,
        "restart": _neutral_value("restart"),
        "logToConsole": _neutral_value("logToConsole"),
        "level": _neutral_value("level"),
        "mountSources": _list_items("mountSources", "created before start"),
        # Derived: the digest of config.json, the bundle directory from the name.
        "digest": _ignore,
        "bundle": _ignore,
        "name": _ignore,
    }
    yield from _by_table(service, "", old, new, table)


def _ignore(service: str, old: Any, new: Any) -> Iterator[Change]:
    return iter(())


def _neutral_value(path: str) -> Comparer:
    def compare(service: str, old: Any, new: Any) -> Iterator[Change]:
        yield _neutral(service, path, old, new)

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
    yield from _by_table(service, "depends.", old, new, table)
