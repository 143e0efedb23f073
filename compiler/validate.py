"""Validate: check a loaded tree against the input JSON Schema, as diagnostics.

The schema (``compiler/format/schemas/service.schema.json``) is the single statement
of the format: ``extsvc schema`` prints it for editors and this module checks
it. Schema errors are generic, so the common cases are reworded here in the
terms of the format (what a dependency must name, what a path must look like).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from extsvc.compiler import policy
from extsvc.compiler.format.diagnostics import Diagnostic, did_you_mean
from extsvc.compiler.format.load import FieldPath, LoadedDocument, SourceMap
from extsvc.compiler.format.schemacheck import SchemaError
from extsvc.compiler.format.schemas import schema, validator

DEPENDENCY_KINDS = ("service", "path", "network", "time", "configuration")


def service_schema() -> dict[str, Any]:
    return schema("service")


def drop_nulls(tree: Any) -> Any:
    """Treat ``key: null`` (or ``key:`` with nothing) as an absent key, as go-yaml does."""
    if isinstance(tree, dict):
        return {key: drop_nulls(value) for key, value in tree.items() if value is not None}
    if isinstance(tree, list):
        return [drop_nulls(item) for item in tree]
    return tree


def _is_dependency(path: FieldPath) -> bool:
    return len(path) == 2 and path[0] == "depends" and isinstance(path[1], int)


def _reword(error: SchemaError, tree: Any, source_map: SourceMap) -> Diagnostic:
    path = error.path
    if path[:1] == (policy.BLOCK,):
        reworded = policy.reword_schema_error(path, error.keyword, source_map)
        if reworded is not None:
            return reworded
    if error.keyword == "additionalProperties" and error.unknown_key is not None:
        unknown = (*path, error.unknown_key)
        return source_map.diagnostic(
            unknown,
            f"unknown field '{error.unknown_key}'",
            hint=did_you_mean(error.unknown_key, error.allowed_keys)
            or _elsewhere_hint(error.unknown_key)
            or "allowed here: " + ", ".join(error.allowed_keys),
            at_key=True,
        )
    if error.keyword == "required" and error.missing_key is not None:
        missing = (*path, error.missing_key)
        if missing in source_map.keys:
            return source_map.diagnostic(
                missing, f"'{error.missing_key}' has no value", at_key=True
            )
        return source_map.diagnostic(
            path, f"missing required field '{error.missing_key}'", at_key=True
        )
    if _is_dependency(path) and error.keyword in ("minProperties", "maxProperties"):
        given = list(_lookup(tree, path))
        named = " and ".join(given) if given else "nothing"
        return source_map.diagnostic(
            path,
            "a dependency names exactly one of "
            + ", ".join(DEPENDENCY_KINDS)
            + f"; this one names {named}",
            hint="split it into one list item per dependency" if given else None,
        )
    if error.keyword == "pattern" and path[-1:] in (
        ("destination",),
        ("path",),
        ("environmentFile",),
    ):
        return source_map.diagnostic(path, f"must be an absolute path, got {_lookup(tree, path)!r}")
    if error.keyword == "pattern" and path == ("name",):
        return source_map.diagnostic(
            path,
            f"invalid name {_lookup(tree, path)!r}: "
            "use lowercase letters, digits, '-' and '_' only",
            hint="the name becomes the service ID ext-<name> and the rootfs directory",
        )
    if error.keyword == "const" and path[-1:] in (("time",), ("configuration",)):
        value = _lookup(tree, path)
        if isinstance(value, str):
            return source_map.diagnostic(
                path, f"expected true, got the string {value!r}", hint="remove the quotes"
            )
        return source_map.diagnostic(
            path, "only 'true' means something here", hint="remove the dependency to not wait"
        )
    if error.keyword == "enum":
        value = _lookup(tree, path)
        return source_map.diagnostic(
            path,
            error.message,
            hint=did_you_mean(value, _enum_values(error.schema_path))
            if isinstance(value, str)
            else None,
        )
    if error.keyword == "type" and error.message.startswith("expected a string"):
        # A YAML number or boolean where text is wanted: quoting is the fix.
        quotable = isinstance(_lookup(tree, path), int | float | bool)
        return source_map.diagnostic(
            path, error.message, hint="quote it to make it a string" if quotable else None
        )
    return source_map.diagnostic(path, error.message)


def _enum_values(schema_path: tuple[str | int, ...]) -> list[str]:
    """The allowed values of the enum an error points at, read from the schema itself."""
    node: Any = service_schema()
    for part in schema_path:
        try:
            # A schema path steps through "$ref" and goes on inside its target.
            node = _resolve_local_ref(node["$ref"]) if part == "$ref" else node[part]
        except (KeyError, IndexError, TypeError):
            return []
    return [value for value in node if isinstance(value, str)] if isinstance(node, list) else []


def _resolve_local_ref(ref: str) -> Any:
    node: Any = service_schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@cache
def _field_index() -> dict[str, tuple[str, ...]]:
    """Every field name the format knows -> the dotted places it may appear."""
    places: dict[str, list[str]] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and "$ref" in node:
            node = _resolve_local_ref(node["$ref"])
        if not isinstance(node, dict):
            return
        for key, child in node.get("properties", {}).items():
            places.setdefault(key, []).append(f"{prefix}{key}")
            walk(child, f"{prefix}{key}.")
        if "items" in node:
            walk(node["items"], prefix.rstrip(".") + "[]." if prefix else "[].")

    walk(service_schema(), "")
    return {key: tuple(found) for key, found in places.items()}


def _elsewhere_hint(unknown: str) -> str | None:
    """For a known field in the wrong place, or a misspelling of one: where it belongs."""
    index = _field_index()
    hint = did_you_mean(unknown, sorted(index))
    name = hint.split("'")[1] if hint else unknown
    places = index.get(name)
    if not places:
        return None
    return f"'{name}' belongs in {' or '.join(places)}"


def _lookup(tree: Any, path: FieldPath) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def validate_document(document: LoadedDocument) -> tuple[Any, list[Diagnostic]]:
    """The tree with nulls dropped, and every schema problem as a diagnostic."""
    source_map = document.source_map
    if not isinstance(document.tree, dict):
        found = "a list" if isinstance(document.tree, list) else "a single value"
        return None, [
            source_map.diagnostic(
                (),
                f"expected a mapping (name, container, restart, ...) at the top level, got {found}",
            )
        ]
    tree = drop_nulls(document.tree)
    diagnostics = [
        _reword(error, tree, source_map) for error in validator("service").iter_errors(tree)
    ]
    return tree, diagnostics


def iter_schema_errors(tree: Any) -> Iterator[SchemaError]:
    """Raw schema errors (for tests that compare with the jsonschema oracle)."""
    return validator("service").iter_errors(tree)
