"""Canonical JSON is the standard library's ``json.dumps(value, sort_keys=True, indent=2,
ensure_ascii=False)`` plus a newline, byte for byte, whichever encoder writes it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extsvc.compiler.canonical import canonical_json


def reference(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


# Every character but lone surrogates (which neither encoder can write as UTF-8).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_any_json_value_is_written_as_the_standard_library_writes_it(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"tiny": 1e-05, "smallest": 5e-324, "edge": 1e-4, "huge": 1e16, "big": 1e300},
        {"nan": math.nan, "inf": -math.inf},
        {"past 64 bits": 2**64, "negative": -(2**63) - 1},
        {1: "integer keys", 2: [(1, 2)]},
        {"controls": "\x00\x1f\x7f\u2028\u2029\ufeff", "quote": '"\\/', "astral": "\U0001f600"},
        {"B": 1, "a": 2, "é": 3, "Z": {"y": [], "x": {}}},
    ],
)
def test_values_where_the_fast_encoder_would_differ(value: Any) -> None:
    assert canonical_json(value) == reference(value)
