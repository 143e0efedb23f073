"""Canonical JSON: the one encoding of every JSON file compile writes.

UTF-8, sorted keys, 2-space indent, one trailing newline, nothing escaped that need
not be: the same value always gives the same bytes, so goldens and ``extsvc diff``
are exact and the plan can pin each config.json by the digest of these bytes (which is
why ``build`` needs them before ``render`` runs).

The definition is the standard library's ``json.dumps(value, sort_keys=True, indent=2,
ensure_ascii=False)``; with an indent it only has its pure-Python encoder, which took
two fifths of a compile. orjson writes the same bytes some forty times faster for
every value compile produces: it differs only on floats below 1e-4 (``0.00001`` for
``1e-05``), on NaN and infinities, and refuses integers beyond 64 bits and keys that
are not strings. A value holding any of those goes the standard library's way, so the
bytes never depend on which encoder wrote them (tests/compiler/test_canonical.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
# The smallest magnitude both encoders write alike (Python's repr turns to an exponent
# below it, orjson does not).
_SMALLEST_ALIKE = 1e-4


def canonical_json(value: Any) -> bytes:
    if _written_alike(value):
        try:
            return orjson.dumps(value, option=_OPTIONS) + b"\n"
        except orjson.JSONEncodeError:
            pass  # a big integer or a key that is not a string: the reference says
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _written_alike(value: Any) -> bool:
    """Whether every float of ``value`` is one both encoders write alike (and nothing
    in it is of a type only one of them knows)."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is float:
            if item != 0.0 and not (_SMALLEST_ALIKE <= abs(item) < math.inf):
                return False  # tiny, infinite or NaN (every comparison with NaN is false)
        elif kind not in (str, int, bool) and item is not None:
            return False  # a subclass or another type: what json.dumps makes of it
    return True
