"""The JSON Schemas shipped with extsvc (the files in this folder), by kind, and their validators.

One schema per kind of document extsvc reads or writes. They are plain files
beside this module in every install (wheel or editable checkout), read through
``__file__`` rather than ``importlib.resources``, whose import alone costs
~5 ms of the start-up budget of ``extsvc validate``.

Also how to find one's way in a schema, for the modules that word its errors
(``schemadiag``) and read a document as Talos does (``leniency``): ``$ref``
resolution and the index of every field name to the places it may appear. A
parsed schema is shared and cached: nothing here or there modifies one.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from extsvc.compiler.format.schemacheck import Validator, compile_schema

SCHEMAS_DIR = Path(__file__).parent

# kind -> file name; the kinds `extsvc schema --kind` prints.
SCHEMA_FILES = {
    "service": "service.schema.json",
    "config": "config.schema.json",
    "host-services": "host-services.schema.json",
    "plan": "plan.schema.json",
    "diff": "diff.schema.json",
    "facts": "facts.schema.json",
}


@cache
def schema(kind: str) -> dict[str, Any]:
    """The parsed schema of ``kind`` (shared: do not modify the result)."""
    data: dict[str, Any] = json.loads((SCHEMAS_DIR / SCHEMA_FILES[kind]).read_text("utf-8"))
    return data


def schema_text(kind: str) -> str:
    return (SCHEMAS_DIR / SCHEMA_FILES[kind]).read_text("utf-8")


@cache
def validator(kind: str) -> Validator:
    return compile_schema(schema(kind))


def resolve_ref(kind: str, ref: str) -> Any:
    node: Any = schema(kind)
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def deref(kind: str, node: Any) -> Any:
    """``node``, or the subschema its ``$ref`` (and theirs, in turn) leads to."""
    while isinstance(node, dict) and "$ref" in node:
        node = resolve_ref(kind, node["$ref"])
    return node


@cache
def field_index(kind: str) -> dict[str, tuple[str, ...]]:
    """Every field name ``kind`` knows -> the dotted places it may appear."""
    places: dict[str, list[str]] = {}

    def walk(node: Any, prefix: str, depth: int) -> None:
        node = deref(kind, node)
        if not isinstance(node, dict) or depth > 16:
            return
        for key, child in node.get("properties", {}).items():
            places.setdefault(key, []).append(f"{prefix}{key}")
            walk(child, f"{prefix}{key}.", depth + 1)
        if "items" in node:
            walk(node["items"], prefix.rstrip(".") + "[]." if prefix else "[].", depth + 1)

    walk(schema(kind), "", 0)
    return {key: tuple(found) for key, found in places.items()}
