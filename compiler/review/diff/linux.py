"""linux: masked and read-only paths, namespaces, rootfs propagation; seccomp and
resources have modules of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extsvc.compiler.defaults import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from extsvc.compiler.review.diff.changes import (
    Change,
    ChangeKind,
    Comparer,
    Privilege,
    by_table,
    compare_power,
    kind_of,
    list_words,
)
from extsvc.compiler.review.diff.mounts import SHARED
from extsvc.compiler.review.diff.resources import compare_resources
from extsvc.compiler.review.diff.seccomp import compare_seccomp


def compare_linux(service: str, old: Any, new: Any) -> Iterator[Change]:
    table: dict[str, Comparer] = {
        "maskedPaths": _path_list("linux.maskedPaths", "masked", DEFAULT_MASKED_PATHS),
        "readonlyPaths": _path_list("linux.readonlyPaths", "read-only", DEFAULT_READONLY_PATHS),
        "namespaces": _namespaces,
        "rootfsPropagation": _rootfs_propagation,
        "seccomp": compare_seccomp,
        "resources": compare_resources,
    }
    yield from by_table(service, "linux.", old, new, table)


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
                f"no longer {adjective}: {list_words(before - after)} ({overall})",
                sorted(before - after),
                None,
            )
        if after - before:
            yield Change(
                service,
                path,
                ChangeKind.ADDED,
                Privilege.LESS,
                f"newly {adjective}: {list_words(after - before)} ({overall})",
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
    # As for a mount's propagation: becoming shared is more exposure, ceasing to less.
    privilege = compare_power(old in SHARED, new in SHARED)
    yield Change(
        service,
        "linux.rootfsPropagation",
        kind_of(old, new),
        privilege,
        f"{old or 'default (private)'} → {new or 'default (private)'}",
        old,
        new,
    )
