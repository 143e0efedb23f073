"""Our fast schema checker agrees with the jsonschema library on the input format.

``extsvc validate`` cannot afford jsonschema's import time, so the input schema
is checked by ``compiler.schemacheck``; jsonschema is the reference here, on
every golden input, every bad-input fixture and a set of hand-made trees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from extsvc.compiler.format.load import iter_documents
from extsvc.compiler.format.schemadiag import drop_nulls, iter_schema_errors
from extsvc.compiler.format.schemas import schema
from tests.support import oracle as oracles

TESTS = Path(__file__).parents[1]
# jsonschema itself raises on these: its message calls repr() on an integer of
# 4,817 digits, over Python's int->str limit (the very bug schemacheck had).
ORACLE_CRASHES = {
    "tagged-integer-4000-digits",
    "x-extsvc-cpus-hex-4000-digits",
    "x-extsvc-memory-hex-4000-digits",
}
INPUT_FILES = sorted(TESTS.glob("golden/*/input/*.yaml")) + sorted(
    path
    for path in TESTS.glob("compiler/bad_inputs/*/*.yaml")
    if path.parent.name not in ORACLE_CRASHES
)

HAND_MADE: list[Any] = [
    {},
    {"name": "x", "container": {"entrypoint": "a"}, "restart": "always"},
    {"name": "X", "container": {"entrypoint": ""}, "restart": "sometimes"},
    {
        "name": "x",
        "container": {"entrypoint": "a", "mounts": [{"source": "/a"}]},
        "restart": "never",
    },
    {
        "name": "x",
        "container": {"entrypoint": "a"},
        "restart": "never",
        "depends": [{}, {"time": False}],
    },
    {
        "name": "x",
        "container": {"entrypoint": "a"},
        "restart": "never",
        "depends": [{"network": []}],
    },
    {"name": 1, "container": [], "restart": None, "logToConsole": "yes"},
]


def trees() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(f"hand-made-{i}", tree) for i, tree in enumerate(HAND_MADE)]
    for path in INPUT_FILES:
        for document, _ in iter_documents(path.name, path.read_bytes()):
            if document is not None and isinstance(document.tree, dict):
                found.append((f"{path.parent.name}/{path.name}", drop_nulls(document.tree)))
    return found


def test_the_input_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema("service"))


@pytest.mark.parametrize(("name", "tree"), trees(), ids=[name for name, _ in trees()])
def test_same_verdict_and_error_locations_as_jsonschema(name: str, tree: Any) -> None:
    oracle = oracles.Draft202012(schema("service"))
    expected = sorted({tuple(error.absolute_path) for error in oracle.iter_errors(tree)}, key=repr)
    actual = sorted({error.path for error in iter_schema_errors("service", tree)}, key=repr)
    assert actual == expected
