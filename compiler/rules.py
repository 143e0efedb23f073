"""Semantic rules on one service file, beyond what the input schema can say.

They read the raw tree (after nulls are dropped), not the model, and check
types defensively: a warning such as "this environment entry is dropped" must
still reach the user when the same file also has an unrelated error.
Rules that need the whole set of services (duplicate names, references to
other services, cycles) are in ``compiler.resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from extsvc.compiler.format.diagnostics import (
    Diagnostic,
    Severity,
    escape,
    hide_value,
    short_repr,
)
from extsvc.compiler.format.enventries import DROPPED, is_dropped
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap, value_at


def check_tree(tree: Any, source_map: SourceMap) -> Iterator[Diagnostic]:
    yield from _environment(value_at(tree, ("container", "environment")), source_map)
    for pattern, kind in _TEXT_FIELDS:
        for path, value in _matches(tree, pattern, ()):
            problem = _text_problem(value, kind)
            if problem is not None:
                yield source_map.diagnostic(path, problem)
    if isinstance(value_at(tree, ("container", "environmentFile")), str):
        yield source_map.diagnostic(
            ("container", "environmentFile"),
            "environmentFile is deprecated; the service waits for the file and reads it at "
            "each start (its variables come first)",
            severity=Severity.WARNING,
            hint="use an ExtensionServiceConfig document with 'environment' instead",
            at_key=True,
        )
    propagation = value_at(tree, ("container", "security", "rootfsPropagation"))
    if propagation in ("unbindable", "runbindable"):
        # runc bind-mounts the rootfs onto itself while preparing it; an
        # unbindable parent makes that mount fail (EINVAL, seen with runc 1.1.5).
        yield source_map.diagnostic(
            ("container", "security", "rootfsPropagation"),
            f"runc cannot start a container with rootfsPropagation '{propagation}' "
            "(its own bind mount of the rootfs fails)",
            severity=Severity.WARNING,
        )


# What a string may hold, by the field it is in. Every string reaches the kernel
# or runc as a C string, where a NUL byte cuts it short or is refused ("embedded
# null byte"). Names and paths are also printed, compared and used as file names:
# a newline or an ESC in them is never meant and hides what the value says.
_TEXT, _NAME, _PATH, _MOUNT_PATH = "text", "name", "path", "mount path"
_TEXT_FIELDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("container", "entrypoint"), _PATH),
    (("container", "args", "[]"), _TEXT),
    (("container", "environmentFile"), _PATH),
    (("container", "mounts", "[]", "source"), _MOUNT_PATH),
    (("container", "mounts", "[]", "destination"), _MOUNT_PATH),
    (("container", "mounts", "[]", "type"), _NAME),
    (("container", "mounts", "[]", "options", "[]"), _NAME),
    (("container", "security", "maskedPaths", "[]"), _PATH),
    (("container", "security", "readonlyPaths", "[]"), _PATH),
    (("depends", "[]", "service"), _NAME),
    (("depends", "[]", "path"), _PATH),
)


def _matches(
    tree: Any, pattern: tuple[str, ...], path: FieldPath
) -> Iterator[tuple[FieldPath, str]]:
    """Every string in ``tree`` at ``pattern`` ("[]" stands for each list item)."""
    if not pattern:
        if isinstance(tree, str):
            yield path, tree
        return
    head, rest = pattern[0], pattern[1:]
    if head == "[]":
        if isinstance(tree, list):
            for index, item in enumerate(tree):
                yield from _matches(item, rest, (*path, index))
    elif isinstance(tree, dict) and head in tree:
        yield from _matches(tree[head], rest, (*path, head))


def _control_character(text: str) -> str | None:
    """The first control character of ``text`` as an escape ("\\n"), or None."""
    found = _CONTROL.search(text)
    return escape(found.group()) if found else None


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _text_problem(value: str, kind: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL byte, which no path, name or argument can hold"
    if kind == _TEXT:
        return None
    control = _control_character(value)
    if control is not None:
        return f"contains the control character {control}; refused in names and paths"
    if kind == _MOUNT_PATH and ".." in value.split("/"):
        return "must not contain '..' components: the path would leave the place it names"
    return None


ENVIRONMENT = ("container", "environment")


def hide_environment(
    diagnostic: Diagnostic, source_map: SourceMap, key: str | None = None
) -> Diagnostic:
    """A diagnostic about ``container.environment`` with no value on its source line:
    ``KEY=`` stays when it is written plainly (or quoted) at the column; in a flow
    list, the other entries before the column are blanked too."""
    line = diagnostic.source_line or ""
    at = line[diagnostic.position.col - 1 :]
    keep = 0
    if key is not None:
        for opening in ("", '"', "'"):
            if at.startswith(f"{opening}{key}="):
                keep = len(opening) + len(key) + 1
    listed = source_map.value_position(ENVIRONMENT)
    same_line = listed.line == diagnostic.position.line and ENVIRONMENT in source_map.values
    return hide_value(diagnostic, keep, blank_from=listed.col + 1 if same_line else None)


def _environment(environment: Any, source_map: SourceMap) -> Iterator[Diagnostic]:
    """Warnings and errors about ``container.environment``, none of which shows a value:
    an environment entry is where secrets go, and diagnostics end up in CI logs."""
    if not isinstance(environment, list):
        return
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(environment):
        if not isinstance(entry, str):
            continue  # a schema error already
        path = ("container", "environment", index)
        key, _, value = entry.partition("=")
        if is_dropped(entry):
            # Without '=', nothing tells a key from a value: show neither.
            yield hide_environment(
                source_map.diagnostic(
                    path,
                    "environment entry has no '=' (not shown: it may hold a secret); " + DROPPED,
                    severity=Severity.WARNING,
                    hint="write KEY=VALUE, or KEY= for an empty value",
                ),
                source_map,
            )
            continue
        problem = _text_problem(key, _NAME) if key else None
        if problem is None and "\x00" in value:
            problem = "the value contains a NUL byte, which no environment entry can hold"
        if problem is not None:
            where = f"environment key {short_repr(key)}: "
            yield hide_environment(source_map.diagnostic(path, where + problem), source_map)
        elif key in first_seen:
            first = source_map.value_position(("container", "environment", first_seen[key]))
            yield hide_environment(
                source_map.diagnostic(
                    path,
                    f"{key} is set again (first on line {first.line}); both entries are kept "
                    "and most programs read the first",
                    severity=Severity.WARNING,
                ),
                source_map,
                key,
            )
        else:
            first_seen[key] = index
