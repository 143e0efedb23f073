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
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, Severity, did_you_mean, short_repr
from extsvc.compiler.format.load import LoadedDocument
from extsvc.compiler.format.schemacheck import SchemaError, show_value
from extsvc.compiler.format.schemas import schema, validator
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap

SchemaPath = tuple[str | int, ...]
_WARNING = Severity.WARNING


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


def resolve_ref(kind: str, ref: str) -> Any:
    node: Any = schema(kind)
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _deref(kind: str, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve_ref(kind, node["$ref"])
    return node


@cache
def field_index(kind: str) -> dict[str, tuple[str, ...]]:
    """Every field name ``kind`` knows -> the dotted places it may appear."""
    places: dict[str, list[str]] = {}

    def walk(node: Any, prefix: str, depth: int) -> None:
        node = _deref(kind, node)
        if not isinstance(node, dict) or depth > 16:
            return
        for key, child in node.get("properties", {}).items():
            places.setdefault(key, []).append(f"{prefix}{key}")
            walk(child, f"{prefix}{key}.", depth + 1)
        if "items" in node:
            walk(node["items"], prefix.rstrip(".") + "[]." if prefix else "[].", depth + 1)

    walk(schema(kind), "", 0)
    return {key: tuple(found) for key, found in places.items()}


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


# "Did you mean" runs difflib over every known field name, ~0.2 ms a key: a file
# of 49,000 unknown keys took 9 s. Past this many unknown keys in one document
# they are not typos, and the hint only lists what is allowed.
MAX_SUGGESTIONS = 20


def unknown_key_hint(
    kind: str, unknown: str, allowed: tuple[str, ...], suggest: bool = True
) -> str:
    hint = (did_you_mean(unknown, allowed) or _elsewhere_hint(kind, unknown)) if suggest else None
    return hint or "allowed here: " + ", ".join(allowed)


# --- Talos's leniency ---------------------------------------------------------------------
#
# Talos decodes service files with go-yaml v3 into Go structs, which accepts more than the
# schema says. Where the schema marks a place with ``x-talos`` (what Talos's decoder does
# there), such a value is rewritten into what Talos reads, with a warning that says so:
#
#   "case":   an enum value in another case ("Always") -> Talos's value ("always")
#   "bool":   yes/no/on/off/y/n (go-yaml's YAML 1.1 words, quoted or not) -> true/false
#   "string": a number or boolean where text is wanted -> its source text ("0755")
#
# (a place also marked ``"x-secret": true`` gets the warning without its value), and an
# object marked ``"x-talos-unknown-keys": "ignored"`` loses the keys Talos ignores
# (a warning), unless the key is clearly a slip for a known one: that stays an error.

_GO_YAML_BOOLEANS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}
# A key this close to a field of another place is that field, misplaced (writableRootfs).
_MISPLACED_CUTOFF = 0.85


def talos_leniency(kind: str, tree: Any, source_map: SourceMap) -> tuple[Any, list[Diagnostic]]:
    """The tree as Talos reads it, and one warning for each place read leniently."""
    warnings: list[Diagnostic] = []
    return _lenient(kind, schema(kind), tree, (), source_map, warnings), warnings


def _lenient(
    kind: str,
    node: Any,
    value: Any,
    path: FieldPath,
    source_map: SourceMap,
    warnings: list[Diagnostic],
) -> Any:
    node = _deref(kind, node)
    if not isinstance(node, dict):
        return value
    mode = node.get("x-talos")
    if mode is not None:
        read = _talos_reading(mode, node, value, path, source_map)
        if read is not None:
            talos_value, message, hint = read
            warnings.append(source_map.diagnostic(path, message, severity=_WARNING, hint=hint))
            return talos_value
    if isinstance(value, dict) and "properties" in node:
        properties = node["properties"]
        result = {}
        for key, child in value.items():
            if key in properties:
                result[key] = _lenient(
                    kind, properties[key], child, (*path, key), source_map, warnings
                )
            elif node.get("x-talos-unknown-keys") == "ignored" and not _meant(
                kind, key, properties, thorough=len(warnings) < MAX_SUGGESTIONS
            ):
                warnings.append(
                    source_map.diagnostic(
                        (*path, key),
                        f"Talos ignores {short_repr(key)} (not a field here)",
                        severity=_WARNING,
                        hint="remove it; extsvc's own settings go under x-extsvc",
                        at_key=True,
                    )
                )
            else:
                result[key] = child
        return result
    if isinstance(value, list) and "items" in node:
        return [
            _lenient(kind, node["items"], item, (*path, index), source_map, warnings)
            for index, item in enumerate(value)
        ]
    return value


def _meant(kind: str, key: str, properties: dict[str, Any], *, thorough: bool = True) -> bool:
    """True when ``key`` is clearly a slip for a known field (here, or misplaced).

    Past MAX_SUGGESTIONS warnings in a document (``thorough`` false: a file of
    thousands of unknown keys), only a difference of case counts; difflib over
    every field costs ~0.2 ms a key.
    """
    if key.lower() in _lowercase_fields(kind):  # every property is in the field index
        return True
    if not thorough:
        return False
    if did_you_mean(key, list(properties)):
        return True
    import difflib

    known = list(field_index(kind))
    return bool(difflib.get_close_matches(key, known, n=1, cutoff=_MISPLACED_CUTOFF))


@cache
def _lowercase_fields(kind: str) -> frozenset[str]:
    return frozenset(name.lower() for name in field_index(kind))


def _talos_reading(
    mode: str, node: dict[str, Any], value: Any, path: FieldPath, source_map: SourceMap
) -> tuple[Any, str, str] | None:
    """(what Talos reads, the warning, its hint) for a value read leniently, or None."""
    if mode == "case" and isinstance(value, str) and value not in node.get("enum", ()):
        enum = [v for v in node.get("enum", ()) if isinstance(v, str)]
        same = [v for v in enum if v.lower() == value.lower()]
        if len(same) == 1:
            return same[0], f"Talos reads this as '{same[0]}'", f"write '{same[0]}'"
    if mode == "bool" and isinstance(value, str) and value in _GO_YAML_BOOLEANS:
        word = "true" if _GO_YAML_BOOLEANS[value] else "false"
        hint = f"write {word} (YAML 1.2 reads {value!r} as a string)"
        return _GO_YAML_BOOLEANS[value], f"Talos reads this as {word}", hint
    if mode == "string" and isinstance(value, int | float | bool):
        text = _source_text(source_map, path) or json_text(value)
        if node.get("x-secret"):  # an environment entry: the message must not repeat it
            return (
                text,
                "Talos reads this as a string (not shown: it may hold a secret)",
                ("quote it"),
            )
        return text, f"Talos reads this as the string '{text}'", f"quote it: '{text}'"
    return None


def _source_text(source_map: SourceMap, path: FieldPath) -> str | None:
    """A plain scalar as written (go-yaml keeps 0755 as "0755"; int() would not)."""
    import re

    position = source_map.value_position(path)
    line = source_map.line(position)
    if line is None:
        return None
    found = re.match(r"[^\s,\]\}#]+", line[position.col - 1 :])
    return found.group(0) if found else None


def json_text(value: Any) -> str:
    import json

    return json.dumps(value)


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
