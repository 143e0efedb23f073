"""Talos's leniency: a document read the way Talos's decoder reads it, with a warning a place.

Talos decodes service files with go-yaml v3 into Go structs, which accepts more than the
schema says. Where the schema marks a place with ``x-talos`` (what Talos's decoder does
there), such a value is rewritten into what Talos reads, with a warning that says so::

    "case":   an enum value in another case ("Always") -> Talos's value ("always")
    "bool":   yes/no/on/off/y/n (go-yaml's YAML 1.1 words, quoted or not) -> true/false
    "string": a number or boolean where text is wanted -> its source text ("0755")

(a place also marked ``"x-secret": true`` gets the warning without its value), and an
object marked ``"x-talos-unknown-keys": "ignored"`` loses the keys Talos ignores
(a warning), unless the key is clearly a slip for a known one: that stays an error.

Only those places are rewritten; everything else is passed through as it is, and the
input tree is never modified in place. The tree Talos reads is then schema-checked like
any other (``schemadiag.check_document`` with ``lenient``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from extsvc.compiler.format.diagnostics import (
    MAX_SUGGESTIONS,
    Diagnostic,
    Severity,
    did_you_mean,
    short_repr,
)
from extsvc.compiler.format.schemas import deref, field_index, schema
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap

_WARNING = Severity.WARNING

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
    node = deref(kind, node)
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
