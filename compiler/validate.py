"""Validate: check a loaded tree against the input JSON Schema, as diagnostics.

The schema (``compiler/schemas/service.schema.json``) is the single statement
of the format: ``extsvc schema`` prints it for editors and this module checks
it. Schema errors are generic, so the common cases are reworded here in the
terms of the format (what a dependency must name, what a path must look like).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from compiler.diagnostics import Diagnostic, did_you_mean
from compiler.load import FieldPath, LoadedDocument, SourceMap
from compiler.schemacheck import SchemaError, Validator, compile_schema

DEPENDENCY_KINDS = ("service", "path", "network", "time", "configuration")


@cache
def service_schema() -> dict[str, Any]:
    text = resources.files("compiler.schemas").joinpath("service.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _service_validator() -> Validator:
    return compile_schema(service_schema())


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
    if error.keyword == "additionalProperties" and error.unknown_key is not None:
        unknown = (*path, error.unknown_key)
        return source_map.diagnostic(
            unknown,
            f"unknown field '{error.unknown_key}'",
            hint=did_you_mean(error.unknown_key, error.allowed_keys)
            or "allowed here: " + ", ".join(error.allowed_keys),
            at_key=True,
        )
    if error.keyword == "required" and error.missing_key is not None:
        missing = (*path, error.missing_key)
        if missing in source_map.keys:
            return source_map.diagnostic(missing, f"'{error.missing_key}' has no value", at_key=True)
        return source_map.diagnostic(path, f"missing required field '{error.missing_key}'", at_key=True)
    if _is_dependency(path) and error.keyword in ("minProperties", "maxProperties"):
        given = list(_lookup(tree, path))
        named = " and ".join(given) if given else "nothing"
        return source_map.diagnostic(
            path,
            "a dependency names exactly one of " + ", ".join(DEPENDENCY_KINDS) + f"; this one names {named}",
            hint="split it into one list item per dependency" if given else None,
        )
    if error.keyword == "pattern" and error.schema_path[-2:] == ("absolutePath", "pattern"):
        return source_map.diagnostic(path, f"must be an absolute path, got {_lookup(tree, path)!r}")
    if error.keyword == "pattern" and path == ("name",):
        return source_map.diagnostic(
            path,
            f"invalid name {_lookup(tree, path)!r}: use lowercase letters, digits, '-' and '_' only",
            hint="the name becomes the service ID ext-<name> and the rootfs directory",
        )
    if error.keyword == "const" and path[-1:] in (("time",), ("configuration",)):
        return source_map.diagnostic(
            path, "only 'true' means something here", hint="remove the dependency to not wait"
        )
    if error.keyword == "enum":
        value = _lookup(tree, path)
        return source_map.diagnostic(
            path,
            error.message,
            hint=did_you_mean(value, _enum_values(error)) if isinstance(value, str) else None,
        )
    if error.keyword == "type" and isinstance(_lookup(tree, path), int | float | bool):
        raw = source_map.line(source_map.value_position(path))
        return source_map.diagnostic(path, error.message, hint="quote it to make it a string" if raw else None)
    return source_map.diagnostic(path, error.message)


def _enum_values(error: SchemaError) -> list[str]:
    # The message lists the allowed values quoted: "'x' is not one of 'a', 'b'".
    _, _, allowed = error.message.partition(" is not one of ")
    return [value.strip().strip("'") for value in allowed.split(",") if value.strip()]


def _lookup(tree: Any, path: FieldPath) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def validate_document(document: LoadedDocument) -> tuple[Any, list[Diagnostic]]:
    """The tree with nulls dropped, and every schema problem as a diagnostic."""
    source_map = document.source_map
    if not isinstance(document.tree, dict):
        found = {list: "a list", str: "a string"}.get(type(document.tree), "a scalar value")
        return None, [
            source_map.diagnostic((), f"expected a mapping (name, container, restart, ...) at the top level, got {found}")
        ]
    tree = drop_nulls(document.tree)
    diagnostics = [_reword(error, tree, source_map) for error in _service_validator().iter_errors(tree)]
    return tree, diagnostics


def iter_schema_errors(tree: Any) -> Iterator[SchemaError]:
    """Raw schema errors (for tests that compare with the jsonschema oracle)."""
    return _service_validator().iter_errors(tree)
