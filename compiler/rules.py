"""Semantic rules on one service file, beyond what the input schema can say.

They read the raw tree (after nulls are dropped), not the model, and check
types defensively: a warning such as "this environment entry is dropped" must
still reach the user when the same file also has an unrelated error.
Rules that need the whole set of services (duplicate names, references to
other services, cycles) are in ``compiler.resolve``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, Severity
from extsvc.compiler.format.load import SourceMap


def _field(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def check_tree(tree: Any, source_map: SourceMap) -> Iterator[Diagnostic]:
    yield from _environment(_field(tree, "container", "environment"), source_map)
    if isinstance(_field(tree, "container", "environmentFile"), str):
        yield source_map.diagnostic(
            ("container", "environmentFile"),
            "environmentFile is deprecated; the service waits for the file, but extsvc does not "
            "read it into the environment yet",
            severity=Severity.WARNING,
            hint="use an ExtensionServiceConfig document with 'environment' instead",
            at_key=True,
        )
    propagation = _field(tree, "container", "security", "rootfsPropagation")
    if propagation in ("unbindable", "runbindable"):
        # runc bind-mounts the rootfs onto itself while preparing it; an
        # unbindable parent makes that mount fail (EINVAL, seen with runc 1.1.5).
        yield source_map.diagnostic(
            ("container", "security", "rootfsPropagation"),
            f"runc cannot start a container with rootfsPropagation '{propagation}' "
            "(its own bind mount of the rootfs fails)",
            severity=Severity.WARNING,
        )


def _environment(environment: Any, source_map: SourceMap) -> Iterator[Diagnostic]:
    if not isinstance(environment, list):
        return
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(environment):
        if not isinstance(entry, str):
            continue  # a schema error already
        path = ("container", "environment", index)
        key, has_equals, _ = entry.partition("=")
        if not has_equals:
            yield source_map.diagnostic(
                path,
                f"environment entry {entry!r} has no '='; Talos drops it",
                severity=Severity.WARNING,
                hint=f"write '{entry}=' for an empty value",
            )
        elif key in first_seen:
            first = source_map.value_position(("container", "environment", first_seen[key]))
            yield source_map.diagnostic(
                path,
                f"{key} is set again (first on line {first.line}); both entries are kept "
                "and most programs read the first",
                severity=Severity.WARNING,
            )
        else:
            first_seen[key] = index
