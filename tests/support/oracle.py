"""jsonschema as the reference oracle, with ECMA-262 regular expressions.

JSON Schema says a ``pattern`` is an ECMA-262 regular expression, but jsonschema runs
it with Python's ``re``, whose ``$`` also matches before a trailing newline: it accepts
``name: "hello\\n"`` against ``^[-_a-z0-9]+$`` as our checker once did. The oracle
therefore gets ``pattern`` and ``patternProperties`` evaluated by ``regress`` (a binding
of a Rust ECMA-262 engine), which shares no code with ``compiler.format.schemacheck``'s
translation of patterns to Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema
import regress
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend


@cache
def ecma_regex(pattern: str) -> regress.Regex:
    return regress.Regex(pattern)


def ecma_search(pattern: str, text: str) -> bool:
    return ecma_regex(pattern).find(text) is not None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if ecma_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_ECMA_KEYWORDS = {"pattern": _pattern, "patternProperties": _pattern_properties}

Draft4 = extend(jsonschema.Draft4Validator, _ECMA_KEYWORDS)
Draft202012 = extend(jsonschema.Draft202012Validator, _ECMA_KEYWORDS)
