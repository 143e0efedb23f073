"""Diff: two compiled outputs -> the list of semantic changes, each classified by privilege.

Pure: it takes two ``CompiledOutput`` values (already loaded or compiled in
memory by ``compiler.review.outputs``) and returns ``Change`` records; rendering is in
``compiler.review.diffreport`` and all I/O (directories, git) in the CLI's edge.

What a reviewer needs is the one change that matters, not 900 lines of JSON:
mounts are matched by destination, environment values are masked, seccomp is
summarised as the syscalls whose fate changed, and every change says whether
it gives the service more power or exposure (``privilege+``), less
(``privilege-``), or neither (``neutral``). Fields this package has no special
rule for still show up, as a neutral change at their JSON path: a change is
never silently dropped. Derived fields (bundle digests, the compiler version,
the plan's levels list, which repeats each service's ``level``) are left out.

This module walks the outputs (plan-wide fields, then each service: its config.json,
its plan entry, the other files of its bundle); each aspect of a config.json has a
module of its own (``process``, ``mounts``, ``linux`` with ``seccomp`` and
``resources``; ``plan_entry``), all speaking ``changes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from extsvc.compiler.format.exitcodes import EXIT_DIFF_CHANGED, EXIT_OK
from extsvc.compiler.format.plan import CONFIG_FILE, ORIGINS_FILE, sha256_digest
from extsvc.compiler.review.diff import linux, mounts, plan_entry, process
from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Comparer,
    Privilege,
    by_table,
    generic,
    kind_of,
    without,
)

__all__ = [
    "Change",
    "ChangeKind",
    "CompiledOutput",
    "Privilege",
    "diff_outputs",
    "exit_status",
    "sort_changes",
]


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


def _plan_wide(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    # Derived or per-service data is compared elsewhere (or not at all).
    skip = {"services", "levels", "compiler"}
    for key in sorted(({*old, *new}) - skip):
        yield from generic(PLAN_SCOPE, key, old.get(key), new.get(key))


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
    old_config, new_config = old.configs.get(service_id, {}), new.configs.get(service_id, {})
    yield from _config(service_id, old_config, new_config, show_values)
    uids = (_process_uid(old_config), _process_uid(new_config))
    yield from plan_entry.compare_plan_entry(service_id, old_entry, new_entry, uids)
    yield from _bundle_files(service_id, old, new)


def _process_uid(config: Mapping[str, Any]) -> int:
    """The uid a service's process runs as (OCI: 0 when config.json names none)."""
    uid = config.get("process", {}).get("user", {}).get("uid", 0)
    return uid if isinstance(uid, int) else 0


# Bundle files not compared by digest: config.json is compared field by field, and
# origins.json only says where those fields came from.
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
        }[kind_of(was, now)]
        yield Change(
            service,
            f"bundle[{name}]",
            kind_of(was, now),
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
        "process": partial(process.compare_process, show_values=show_values),
        "mounts": mounts.compare_mounts,
        "linux": linux.compare_linux,
    }
    yield from by_table(service, "", old, new, table)


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
    yield from generic(service, "root", *without(("readonly",), old, new))
