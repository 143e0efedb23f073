"""Schema errors -> worded diagnostics, for every kind of document extsvc reads.

Service files, ExtensionServiceConfig documents, host-services files and plan.json
all go through here: one schema each (``compiler/format/schemas``), one validator
(``schemacheck``), one wording, one ``Diagnostic`` per problem, all problems at once.

The wording is data in the schemas, not code here. A subschema may say how its own
failures read with the extsvc annotation ``x-errors``::

    "x-errors": {
      "pattern": {"message": "must be an absolute path, got {value!r}"},
      "const:string": {"message": "expected true, got the string {value!r}",
                       "hint": "remove the quotes"},
      "const": "only 'true' means something here"
    }

keyed by the failing keyword, or by ``keyword:kind`` (kind of the offending value:
string, number, boolean, list, mapping, null) to word one kind of value apart. A
plain string is a message without a hint. Templates are ``str.format`` strings with
these fields: ``value`` (the offending value), ``found`` ("a list", "a single value"),
``given`` (the keys present, "service and path", or "nothing"), ``properties`` (the
keys the subschema knows, "service, path, network") and ``message`` (the validator's
own wording). Everything without ``x-errors`` gets the generic treatment below:
unknown keys with "did you mean" (or where that key belongs), missing keys, enums
with the closest value, a quoting hint where text is expected.

``check_document`` is the one entry every input takes: nulls dropped as go-yaml drops
them, the tree read as Talos reads it where asked (``leniency``), then every schema
problem worded, warnings first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extsvc.compiler.format.diagnostics import MAX_SUGGESTIONS, Diagnostic, did_you_mean, short_repr
from extsvc.compiler.format.leniency import talos_leniency
from extsvc.compiler.format.load import LoadedDocument
from extsvc.compiler.format.schemacheck import SchemaError, show_value
from extsvc.compiler.format.schemas import field_index, resolve_ref, schema, validator
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap

SchemaPath = tuple[str | int, ...]


def drop_nulls(tree: Any) -> Any:
    """Treat ``key: null`` (or ``key:`` with nothing) as an absent key, as go-yaml does."""
    if isinstance(tree, dict):
        return {key: drop_nulls(value) for key, value in tree.items() if value is not None}
    if isinstance(tree, list):
        return [drop_nulls(item) for item in tree]
    return tree


def value_kind(value: Any) -> str:
    """The kind of a loaded value as the ``x-errors`` keys name it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "null"


def _found(value: Any) -> str:
    return {"list": "a list", "mapping": "a mapping"}.get(value_kind(value), "a single value")


def schema_node(kind: str, schema_path: SchemaPath) -> Any:
    """The subschema at ``schema_path`` of ``kind``'s schema, stepping through ``$ref``."""
    node: Any = schema(kind)
    for part in schema_path:
        try:
            # A schema path steps through "$ref" and goes on inside its target.
            node = resolve_ref(kind, node["$ref"]) if part == "$ref" else node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _elsewhere_hint(kind: str, unknown: str) -> str | None:
    """For a known field in the wrong place, or a misspelling of one: where it belongs."""
    index = field_index(kind)
    hint = did_you_mean(unknown, sorted(index))
    name = hint.split("'")[1] if hint else unknown
    places = index.get(name)
    if not places:
        return None
    return f"'{name}' belongs in {' or '.join(places)}"


def lookup(tree: Any, path: FieldPath) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _wording(node: Any, keyword: str, value: Any) -> tuple[str, str | None] | None:
    """The schema's own (message, hint) template for ``keyword`` failing on ``value``."""
    wording = node.get("x-errors") if isinstance(node, dict) else None
    if not isinstance(wording, dict):
        return None
    entry = wording.get(f"{keyword}:{value_kind(value)}", wording.get(keyword))
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, dict):
        return entry["message"], entry.get("hint")
    return None


class _Shown:
    """A value for a message template: ``{value!r}`` and ``{value}`` cut to 60 characters
    (a hostile value can be a megabyte) and never ``str()`` of a huge integer (over
    4,300 digits, Python refuses)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        if isinstance(self.value, str):
            return short_repr(self.value)
        return show_value(self.value)

    def __str__(self) -> str:
        return repr(self)[1:-1] if isinstance(self.value, str) else repr(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _fields(node: Any, value: Any, error: SchemaError) -> dict[str, Any]:
    given = [short_repr(str(key))[1:-1] for key in value][:10] if isinstance(value, dict) else []
    properties = node.get("properties", {}) if isinstance(node, dict) else {}
    return {
        # x-secret: a value no diagnostic may repeat (an environment entry).
        "value": "(not shown)" if node.get("x-secret") else _Shown(value),
        "found": _found(value),
        "given": " and ".join(given) if given else "nothing",
        "properties": ", ".join(properties),
        "message": error.message,
    }


def reword(
    kind: str, error: SchemaError, tree: Any, source_map: SourceMap, suggest: bool = True
) -> Diagnostic:
    """One schema error of a ``kind`` document as a diagnostic in the format's own terms
    (``suggest``: look for a "did you mean" for an unknown key)."""
    path = error.path
    value = lookup(tree, path)
    node = schema_node(kind, error.schema_path[:-1])
    worded = _wording(node, error.keyword, value)
    if worded is not None:
        message, hint = worded
        fields = _fields(node, value, error)
        return source_map.diagnostic(
            path, message.format(**fields), hint=hint.format(**fields) if hint else None
        )
    if error.keyword == "additionalProperties" and error.unknown_key is not None:
        return source_map.diagnostic(
            (*path, error.unknown_key),
            f"unknown field {short_repr(error.unknown_key)}",
            hint=unknown_key_hint(kind, error.unknown_key, error.allowed_keys, suggest),
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
    if error.keyword == "enum" and isinstance(node, dict):
        allowed = [v for v in node.get("enum", []) if isinstance(v, str)]
        hint = did_you_mean(value, allowed) if isinstance(value, str) else None
        return source_map.diagnostic(path, error.message, hint=hint)
    if error.keyword == "type" and isinstance(value, int | float | bool):
        # A YAML number or boolean where text is wanted: quoting is the fix.
        quotable = error.message.startswith("expected a string")
        hint = "quote it to make it a string" if quotable else None
        return source_map.diagnostic(path, error.message, hint=hint)
    return source_map.diagnostic(path, error.message)


def unknown_key_hint(
    kind: str, unknown: str, allowed: tuple[str, ...], suggest: bool = True
) -> str:
    hint = (did_you_mean(unknown, allowed) or _elsewhere_hint(kind, unknown)) if suggest else None
    return hint or "allowed here: " + ", ".join(allowed)


def iter_schema_errors(kind: str, tree: Any) -> Iterator[SchemaError]:
    """Raw schema errors (for tests that compare with the jsonschema oracle)."""
    return validator(kind).iter_errors(tree)


def check_tree(kind: str, tree: Any, source_map: SourceMap) -> list[Diagnostic]:
    """Every schema problem of one loaded ``kind`` tree, worded."""
    diagnostics: list[Diagnostic] = []
    unknown_keys = 0
    for error in iter_schema_errors(kind, tree):
        unknown_keys += error.unknown_key is not None
        suggest = unknown_keys <= MAX_SUGGESTIONS
        diagnostics.append(reword(kind, error, tree, source_map, suggest))
    return diagnostics


def check_document(
    kind: str, document: LoadedDocument, *, nulls_absent: bool = True, lenient: bool = False
) -> tuple[Any, list[Diagnostic]]:
    """The document's tree (nulls dropped unless told otherwise; read as Talos reads it
    when ``lenient``) and its schema problems, warnings first.

    The tree is None when its top level is not even a mapping: nothing below can
    be trusted then.
    """
    tree = drop_nulls(document.tree) if nulls_absent else document.tree
    warnings: list[Diagnostic] = []
    if lenient and isinstance(tree, dict):
        tree, warnings = talos_leniency(kind, tree, document.source_map)
    diagnostics = warnings + check_tree(kind, tree, document.source_map)
    return (tree if isinstance(tree, dict) else None), diagnostics
