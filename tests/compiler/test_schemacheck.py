"""compiler.schemacheck against jsonschema, the reference oracle.

Differential tests (OCI corpus, mutated hello-world config, plan schema) demand the same
verdict as jsonschema and, outside anyOf/oneOf, the same (instance path, keyword) pairs.
Unit tests pin each keyword, the error fields and messages, and the documented places where
schemacheck deliberately differs from jsonschema.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import FrozenInstanceError
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from extsvc.compiler.format.schemacheck import SchemaError, Validator, compile_schema
from tests.support import oracle as oracles

REPO = Path(__file__).parents[2]
OCI_SCHEMAS = REPO / "oci-schemas"
CORPUS = REPO / "tests" / "data" / "oci-runtime-spec-test"
# The golden hello-world bundle is byte-for-byte the Talos-generated example config.
HELLO_WORLD = REPO / "tests/golden/hello-world/expected/bundles/hello-world/config.json"
PLAN_SCHEMA = REPO / "compiler" / "format" / "schemas" / "plan.schema.json"
CORPUS_SCHEMAS = {
    "config": "config-schema.json",
    "features": "features-schema.json",
    "state": "state-schema.json",
}
DRAFT4_URI = "http://json-schema.org/draft-04/schema#"
DRAFT2020_URI = "https://json-schema.org/draft/2020-12/schema"

Json = Any


# --- Fixtures and oracle helpers ----------------------------------------------------------


@cache
def oci_documents() -> dict[str, Json]:
    return {p.name: json.loads(p.read_text()) for p in sorted(OCI_SCHEMAS.glob("*.json"))}


@cache
def ours(schema_name: str) -> Validator:
    docs = oci_documents()
    return compile_schema(docs[schema_name], docs)


@cache
def oracle(schema_name: str) -> jsonschema.protocols.Validator:
    docs = oci_documents()
    registry: Registry[Json] = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT4))
        for name, doc in docs.items()
    )
    return oracles.Draft4(docs[schema_name], registry=registry)


@cache
def plan_schema() -> Json:
    return json.loads(PLAN_SCHEMA.read_text())


def oracle_for(schema: Mapping[str, Any], documents: Mapping[str, Any] | None = None) -> Any:
    """jsonschema's validator for an ad-hoc schema, in the dialect schemacheck picks."""
    draft4 = "draft-04" in str(schema.get("$schema", ""))
    spec = DRAFT4 if draft4 else DRAFT202012
    registry: Registry[Json] = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=spec))
        for name, doc in (documents or {}).items()
    )
    cls = oracles.Draft4 if draft4 else oracles.Draft202012
    return cls(schema, registry=registry)


def _under_alternatives(schema_path: Any) -> bool:
    return "anyOf" in schema_path or "oneOf" in schema_path


def assert_same_as_oracle(validator: Validator, oracle_validator: Any, instance: Json) -> None:
    """Same verdict; outside anyOf/oneOf, the same (path, keyword) pairs."""
    expected = list(oracle_validator.iter_errors(instance))
    actual = list(validator.iter_errors(instance))
    assert validator.is_valid(instance) == (not expected)
    assert bool(actual) == bool(expected), (actual, [e.message for e in expected])
    expected_pairs = {
        (tuple(e.path), e.validator) for e in expected if not _under_alternatives(e.schema_path)
    }
    actual_pairs = {(e.path, e.keyword) for e in actual if not _under_alternatives(e.schema_path)}
    assert actual_pairs == expected_pairs


def errors(schema: Mapping[str, Any], instance: Json, **documents: Any) -> list[SchemaError]:
    return list(compile_schema(schema, documents).iter_errors(instance))


def the_error(schema: Mapping[str, Any], instance: Json) -> SchemaError:
    found = errors(schema, instance)
    assert len(found) == 1, found
    return found[0]


# --- 1. The OCI runtime-spec test corpus --------------------------------------------------


def corpus_files() -> list[Path]:
    """The corpus files that are JSON (two are deliberately broken JSON: they test a
    JSON parser, not a schema, so they are not schema cases at all)."""
    return [path for path in sorted(CORPUS.glob("*/*/*.json")) if _parses(path)]


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except ValueError:
        return False
    return True


def test_the_corpus_has_good_and_bad_documents_of_each_kind() -> None:
    # A glob that found nothing would make the parametrized test below vanish silently.
    kinds = {(path.parts[-3], path.parts[-2]) for path in corpus_files()}
    assert kinds == {
        ("config", "good"),
        ("config", "bad"),
        ("features", "good"),
        ("features", "bad"),
        ("state", "good"),
    }


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_oci_corpus_matches_jsonschema(path: Path) -> None:
    instance = json.loads(path.read_text())
    schema_name = CORPUS_SCHEMAS[path.relative_to(CORPUS).parts[0]]
    assert_same_as_oracle(ours(schema_name), oracle(schema_name), instance)
    # The corpus says good/ or bad/; both validators agree with it on every parsable file.
    assert ours(schema_name).is_valid(instance) == (path.parent.name == "good")


# --- 2. hello-world config.json and mutations of it ---------------------------------------


@cache
def hello_world() -> Json:
    return json.loads(HELLO_WORLD.read_text())


def test_hello_world_config_is_valid() -> None:
    assert ours("config-schema.json").is_valid(hello_world())
    assert list(ours("config-schema.json").iter_errors(hello_world())) == []


def all_paths(node: Json, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from all_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from all_paths(value, (*prefix, index))


def get_at(node: Json, path: tuple[Any, ...]) -> Json:
    for part in path:
        node = node[part]
    return node


HELLO_PATHS = list(all_paths(json.loads(HELLO_WORLD.read_text())))
CONTAINER_PATHS = [p for p in HELLO_PATHS if isinstance(get_at(hello_world(), p), dict | list)]
STRING_PATHS = [p for p in HELLO_PATHS if isinstance(get_at(hello_world(), p), str)]
INT_PATHS = [p for p in HELLO_PATHS if type(get_at(hello_world(), p)) is int]
NON_ROOT_PATHS = [p for p in HELLO_PATHS if p]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    # Where ECMA-262 and Python regular expressions differ ("$", ".").
    | st.sampled_from(["a\n", "b\n", "\n", "a\rb", "ab\u2028"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# Near-misses of the enums and field names in the OCI schemas.
bad_strings = st.sampled_from(
    ["pidx", "SCMP_ACT_BOGUS", "RLIMIT_NOFILES", "rprivatex", "", "1.0.0-rc", "Pid", "uidx"]
) | st.text(max_size=8)


@st.composite
def mutation(draw: st.DrawFn, doc: Json) -> Json:
    """The document with one random edit (the caller applies several)."""
    kind = draw(st.sampled_from(["replace", "delete", "add", "bad-string", "bad-number"]))
    if kind == "replace":
        path = draw(st.sampled_from(NON_ROOT_PATHS))
        parent, key = _parent(doc, path)
        if parent is not None:
            old = parent[key]
            new = draw(json_values.filter(lambda v: type(v) is not type(old)))
            parent[key] = new
    elif kind == "delete":
        path = draw(st.sampled_from(NON_ROOT_PATHS))
        parent, key = _parent(doc, path)
        if parent is not None:
            del parent[key]
    elif kind == "add":
        target = _existing(doc, draw(st.sampled_from(CONTAINER_PATHS)))
        value = draw(json_values)
        if isinstance(target, dict):
            target[draw(st.sampled_from(["extra", "writableRootfs", "type", "path"]))] = value
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), value)
    elif kind == "bad-string":
        parent, key = _parent(doc, draw(st.sampled_from(STRING_PATHS)))
        if parent is not None:
            parent[key] = draw(bad_strings)
    else:  # same type, maybe out of range (uid -1, mode 512, uint64 overflow, ...)
        parent, key = _parent(doc, draw(st.sampled_from(INT_PATHS)))
        if parent is not None:
            parent[key] = draw(st.sampled_from([-1, 512, 2**32, 2**64]) | st.integers())
    return doc


def _existing(doc: Json, path: tuple[Any, ...]) -> Json:
    """The node at ``path`` if earlier edits left it there, else None."""
    try:
        return get_at(doc, path)
    except (KeyError, IndexError, TypeError):
        return None


def _parent(doc: Json, path: tuple[Any, ...]) -> tuple[Json, Any]:
    parent = _existing(doc, path[:-1])
    key = path[-1]
    if isinstance(parent, dict) and key in parent:
        return parent, key
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        return parent, key
    return None, key


@st.composite
def mutated_hello_world(draw: st.DrawFn) -> Json:
    doc = copy.deepcopy(hello_world())
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(mutation(doc))
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_hello_world())
def test_mutated_hello_world_matches_jsonschema(doc: Json) -> None:
    assert_same_as_oracle(ours("config-schema.json"), oracle("config-schema.json"), doc)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_random_values_match_jsonschema_on_the_oci_definitions(value: Json) -> None:
    # Small schemas with every kind of keyword the OCI files use, on arbitrary values.
    for name in ("Mount", "Hook", "IDMapping", "annotations", "ociVersion", "uint32"):
        schema = {"$schema": DRAFT4_URI, "$ref": f"defs.json#/definitions/{name}"}
        assert_same_as_oracle(
            compile_schema(schema, oci_documents()),
            oracle_for(schema, oci_documents()),
            value,
        )


# --- 3. The plan schema (draft 2020-12) ---------------------------------------------------


def valid_plan() -> Json:
    depends = {
        "services": ["ext-db"],
        "hostServices": ["cri"],
        "paths": ["/var/run/x.sock"],
        "network": ["addresses", "etcfiles"],
        "time": True,
        "configuration": False,
    }
    service = {
        "name": "web",
        "source": "web.yaml",
        "bundle": "bundles/web",
        "digest": "sha256:" + "ab" * 32,
        "rootfs": "/usr/local/lib/containers/web",
        "restart": "always",
        "logToConsole": False,
        "level": 1,
        "depends": depends,
        "mountSources": ["/var/lib/web"],
    }
    db = {**copy.deepcopy(service), "name": "db", "bundle": "bundles/db", "level": 0}
    db["depends"] = {**depends, "services": [], "environmentFile": "/etc/db.env"}
    return {
        "apiVersion": "extsvc/v1",
        "kind": "Plan",
        "compiler": {"name": "extsvc", "version": "0.1.0"},
        "arch": "amd64",
        "rootfsBase": "/usr/local/lib/containers",
        "levels": [["ext-db"], ["ext-web"]],
        "services": {"ext-web": service, "ext-db": db},
    }


def _plan_with(edit: str) -> Json:
    plan = valid_plan()
    web = plan["services"]["ext-web"]
    if edit == "valid":
        pass
    elif edit == "wrong-api-version":
        plan["apiVersion"] = "extsvc/v2"
    elif edit == "bad-restart":
        web["restart"] = "alwayz"
    elif edit == "bad-service-id":
        plan["services"]["web"] = plan["services"].pop("ext-web")
    elif edit == "empty-level":
        plan["levels"].append([])
    elif edit == "negative-level":
        web["level"] = -1
    elif edit == "float-level":
        web["level"] = 1.0  # 2020-12: an integer
    elif edit == "unknown-field":
        web["writableRootfs"] = True
    elif edit == "missing-field":
        del web["depends"]["time"]
    elif edit == "relative-path":
        web["depends"]["paths"] = ["var/run"]
    elif edit == "bad-network":
        web["depends"]["network"] = ["internet"]
    elif edit == "bool-as-int":
        web["level"] = True
    elif edit == "empty-version":
        plan["compiler"]["version"] = ""
    return plan


PLAN_EDITS = [
    "valid", "wrong-api-version", "bad-restart", "bad-service-id", "empty-level",
    "negative-level", "float-level", "unknown-field", "missing-field", "relative-path",
    "bad-network", "bool-as-int", "empty-version",
]  # fmt: skip


@pytest.mark.parametrize("edit", PLAN_EDITS)
def test_plan_schema_matches_jsonschema(edit: str) -> None:
    plan = _plan_with(edit)
    validator = compile_schema(plan_schema())
    oracle_validator = oracles.Draft202012(plan_schema())
    assert validator.is_valid(plan) == oracle_validator.is_valid(plan)
    assert validator.is_valid(plan) == (edit in ("valid", "float-level"))
    # propertyNames errors point at the key (documented); compare verdicts and keywords.
    assert {e.keyword for e in validator.iter_errors(plan)} == {
        e.validator for e in oracle_validator.iter_errors(plan)
    }


@pytest.mark.parametrize(
    "path", sorted((REPO / "tests" / "golden").glob("*/expected/plan.json")), ids=str
)
def test_golden_plans_are_valid(path: Path) -> None:
    assert compile_schema(plan_schema()).is_valid(json.loads(path.read_text()))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_plans_match_jsonschema(data: st.DataObject) -> None:
    plan = valid_plan()
    paths = [p for p in all_paths(plan) if p]
    parent, key = _parent(plan, data.draw(st.sampled_from(paths)))
    assert parent is not None
    if data.draw(st.booleans()):
        parent[key] = data.draw(json_values)
    else:
        del parent[key]
    validator = compile_schema(plan_schema())
    assert validator.is_valid(plan) == oracles.Draft202012(plan_schema()).is_valid(plan)


def test_plan_error_messages_read_well() -> None:
    plan = _plan_with("bad-restart")
    plan["services"]["ext-web"]["depends"]["network"] = "addresses"
    del plan["services"]["ext-db"]["source"]
    found = {e.path: e.message for e in compile_schema(plan_schema()).iter_errors(plan)}
    assert found == {
        ("services", "ext-web", "restart"): (
            "'alwayz' is not one of 'always', 'never', 'untilSuccess'"
        ),
        ("services", "ext-web", "depends", "network"): "expected a list, got a string",
        ("services", "ext-db"): "missing required field 'source'",
    }


# --- 4. Keywords, one by one --------------------------------------------------------------

D4 = {"$schema": DRAFT4_URI}

CLOSED = "additionalProperties"
IF_STRING = {"if": {"type": "string"}}
STRING_DEF = {"s": {"type": "string"}}
ANNOTATED = {
    "title": "t", "description": "d", "default": 1, "examples": [1], "$comment": "c",
    "deprecated": True, "format": "email", "$id": "https://x.invalid/s",
}  # fmt: skip

# (schema, instance, expected keyword of the single error or None when valid)
KEYWORD_CASES: list[tuple[dict[str, Any], Json, str | None]] = [
    ({"type": "string"}, "x", None),
    ({"type": "string"}, 1, "type"),
    ({"type": ["string", "null"]}, None, None),
    ({"type": "integer"}, True, "type"),
    ({"type": "number"}, False, "type"),
    ({"type": "integer"}, 1.0, None),
    ({**D4, "type": "integer"}, 1.0, "type"),
    ({"type": "integer"}, 1.5, "type"),
    ({"type": "number"}, 10**30, None),
    ({"type": "object"}, [], "type"),
    ({"type": "array"}, {}, "type"),
    ({"type": "boolean"}, 0, "type"),
    ({"type": "null"}, 0, "type"),
    ({"properties": {"a": {"type": "string"}}}, {"a": 1}, "type"),
    ({"properties": {"a": {"type": "string"}}}, {"b": 1}, None),
    ({"properties": {"a": {"type": "string"}}}, "not an object", None),
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, CLOSED),
    ({"additionalProperties": {"type": "integer"}}, {"a": 1, "b": "x"}, "type"),
    ({"patternProperties": {"^x-": {"type": "integer"}}}, {"x-a": "s", "y": "s"}, "type"),
    ({"patternProperties": {"^x-": {}}, "additionalProperties": False}, {"x-a": 1}, None),
    ({"patternProperties": {"^x-": {}}, "additionalProperties": False}, {"y": 1}, CLOSED),
    ({"properties": {"a": {}}, "patternProperties": {"a": {"minimum": 5}}}, {"a": 1}, "minimum"),
    ({"required": ["a", "b"]}, {"a": 1, "b": 2}, None),
    ({"required": ["a"]}, {}, "required"),
    ({"required": ["a"]}, [], None),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ab": 1, "Ab": 2}, "pattern"),
    ({"minProperties": 1}, {}, "minProperties"),
    ({"maxProperties": 1}, {"a": 1, "b": 2}, "maxProperties"),
    ({"items": {"type": "integer"}}, [1, 2, "x"], "type"),
    ({"items": {"type": "integer"}}, {"not": "a list"}, None),
    ({**D4, "items": [{"type": "integer"}]}, [1, "free"], None),
    ({**D4, "items": [{"type": "integer"}]}, ["x"], "type"),
    ({"minItems": 1}, [], "minItems"),
    ({"maxItems": 1}, [1, 2], "maxItems"),
    ({"uniqueItems": True}, [1, True], None),
    ({"uniqueItems": True}, [0, False, None, "0"], None),
    ({"uniqueItems": True}, [1, 1.0], "uniqueItems"),
    ({"uniqueItems": True}, [{"a": [1]}, {"a": [1]}], "uniqueItems"),
    ({"uniqueItems": True}, [{"a": [1]}, {"a": [True]}], None),
    ({"uniqueItems": False}, [1, 1], None),
    ({"enum": ["a", 1, None]}, None, None),
    ({"enum": ["a", 1, None]}, 1.0, None),
    ({"enum": [1]}, True, "enum"),
    ({"enum": [False]}, 0, "enum"),
    ({"enum": [[1, {"a": None}]]}, [1, {"a": None}], None),
    ({"enum": ["a"]}, "b", "enum"),
    ({"const": "x"}, "x", None),
    ({"const": 0}, False, "const"),
    ({"const": {"a": [1]}}, {"a": [1.0]}, None),
    ({"minimum": 0}, -1, "minimum"),
    ({"minimum": 0}, "not a number", None),
    ({"minimum": 0}, False, None),
    ({"maximum": 5}, 5, None),
    ({"maximum": 5}, 5.5, "maximum"),
    ({"minimum": 0}, float("nan"), None),
    ({"exclusiveMinimum": 0}, 0, "exclusiveMinimum"),
    ({"exclusiveMaximum": 5}, 4.99, None),
    ({"minimum": 1, "exclusiveMinimum": 3}, 3, "exclusiveMinimum"),
    ({"minLength": 1}, "", "minLength"),
    ({"minLength": 2}, "é", "minLength"),
    ({"maxLength": 2}, "abc", "maxLength"),
    ({"pattern": "b"}, "abc", None),
    ({"pattern": "^b"}, "abc", "pattern"),
    ({"pattern": "^b"}, 5, None),
    # ECMA-262: "$" is the end of the string, "." is no line terminator (Python differs).
    ({"pattern": "^[a-z]+$"}, "hello\n", "pattern"),
    ({"pattern": "^[a-z]+$"}, "hello", None),
    ({"pattern": "^a.b$"}, "a\rb", "pattern"),
    ({"pattern": "^[$.]+$"}, "$.", None),
    ({"pattern": "^MB:[^\\n]*$"}, "MB:x\n", "pattern"),
    ({"pattern": "\\S"}, "\u00a0\u2028", "pattern"),
    ({"pattern": "^[\\s,]+$"}, " ,\u3000", None),
    ({"patternProperties": {"^x$": {"type": "integer"}}}, {"x\n": "s"}, None),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "no\n": 2}, "pattern"),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1, None),
    ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, None, "anyOf"),
    ({"oneOf": [{"type": "string"}, {"minLength": 2}]}, "ab", "oneOf"),
    ({"oneOf": [{"type": "string"}, {"minLength": 2}]}, "a", None),
    ({"allOf": [{"type": "string"}, {"minLength": 2}]}, "a", "minLength"),
    ({**IF_STRING, "then": {"minLength": 2}, "else": {"minimum": 0}}, "a", "minLength"),
    ({**IF_STRING, "then": {"minLength": 2}, "else": {"minimum": 0}}, -1, "minimum"),
    ({**IF_STRING, "then": {"minLength": 2}}, -1, None),
    ({"$defs": STRING_DEF, "$ref": "#/$defs/s"}, 1, "type"),
    # In 2020-12 the siblings of $ref apply; draft-04 (and jsonschema) ignores them.
    ({"$defs": STRING_DEF, "$ref": "#/$defs/s", "minLength": 3}, "ab", "minLength"),
    ({**D4, "definitions": STRING_DEF, "$ref": "#/definitions/s", "minLength": 3}, "a", None),
    (ANNOTATED, "not an email", None),
    ({"type": "object", "properties": {"a": False}}, {"a": 1}, "false"),
    ({"items": True}, [1], None),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "instance", "keyword"), KEYWORD_CASES)
def test_keyword(schema: dict[str, Any], instance: Json, keyword: str | None) -> None:
    found = errors(schema, instance)
    assert [e.keyword for e in found] == ([] if keyword is None else [keyword])
    assert compile_schema(schema).is_valid(instance) == (keyword is None)
    if keyword != "false":  # jsonschema says False for a "false" schema too, no keyword
        assert oracle_for(schema).is_valid(instance) == (keyword is None)


def test_all_errors_are_reported() -> None:
    schema = {
        "type": "object",
        "required": ["a", "b"],
        "properties": {"c": {"type": "string"}, "d": {"items": {"minimum": 0}}},
        "additionalProperties": False,
    }
    found = errors(schema, {"c": 1, "d": [-1, 0, -2], "e": 1})
    assert sorted((e.path, e.keyword) for e in found) == [
        ((), "additionalProperties"),
        ((), "required"),
        ((), "required"),
        (("c",), "type"),
        (("d", 0), "minimum"),
        (("d", 2), "minimum"),
    ]


# --- Error fields and messages ------------------------------------------------------------


def test_type_messages_name_yaml_kinds() -> None:
    cases = [
        ({"type": "array"}, "x", "expected a list, got a string"),
        ({"type": "string"}, 1, "expected a string, got an integer"),
        ({"type": "object"}, 1.5, "expected a mapping, got a number"),
        ({"type": "boolean"}, None, "expected a boolean (true/false), got null"),
        ({"type": "integer"}, True, "expected an integer, got a boolean"),
        ({"type": ["string", "array"]}, {}, "expected a string or a list, got a mapping"),
        ({"type": ["string", "integer", "null"]}, [], "expected a string, an integer or null, got a list"),  # noqa: E501
    ]  # fmt: skip
    for schema, instance, message in cases:
        assert the_error(schema, instance).message == message


def test_unknown_field_error_carries_the_key_and_the_allowed_names() -> None:
    schema = {"properties": {"name": {}, "depends": {}}, "additionalProperties": False}
    error = the_error(schema, {"name": "x", "writableRootfs": True})
    assert error == SchemaError(
        path=(),
        keyword="additionalProperties",
        message="unknown field 'writableRootfs'",
        schema_path=("additionalProperties",),
        unknown_key="writableRootfs",
        allowed_keys=("name", "depends"),
    )


def test_each_unknown_field_is_its_own_error() -> None:
    schema = {"properties": {"a": {}}, "additionalProperties": False}
    found = errors(schema, {"b": 1, "c": 2})
    assert [e.unknown_key for e in found] == ["b", "c"]


def test_missing_field_error_carries_the_key() -> None:
    error = the_error({"required": ["entrypoint"]}, {"name": "x"})
    assert error.message == "missing required field 'entrypoint'"
    assert error.missing_key == "entrypoint"
    assert error.path == ()


def test_paths_locate_the_value() -> None:
    schema = {"properties": {"a": {"items": {"properties": {"b": {"type": "string"}}}}}}
    error = the_error(schema, {"a": [{"b": "ok"}, {"b": 2}]})
    assert error.path == ("a", 1, "b")
    assert error.schema_path == ("properties", "a", "items", "properties", "b", "type")


def test_messages_for_sizes_patterns_and_values() -> None:
    cases = [
        ({"minItems": 1}, [], "must not be empty"),
        ({"minLength": 1}, "", "must not be empty"),
        ({"minProperties": 1}, {}, "must not be empty"),
        ({"minItems": 2}, [1], "must have at least 2 items"),
        ({"maxItems": 1}, [1, 2], "must have at most 1 item"),
        ({"minLength": 3}, "ab", "must be at least 3 characters long"),
        ({"maxLength": 1}, "ab", "must be at most 1 character long"),
        ({"pattern": "^[-_a-z0-9]+$"}, "Bad", "does not match ^[-_a-z0-9]+$"),
        ({"enum": ["always", "never", "untilSuccess"]}, "alwayz", "'alwayz' is not one of 'always', 'never', 'untilSuccess'"),  # noqa: E501
        ({"enum": [True, None, 3]}, {}, "a mapping is not one of true, null, 3"),
        ({"enum": ["only"]}, "other", "must be 'only'"),
        ({"const": "extsvc/v1"}, "x", "must be 'extsvc/v1', got 'x'"),
        ({"minimum": 0}, -1, "must be at least 0"),
        ({"maximum": 511}, 512, "must be at most 511"),
        ({"exclusiveMinimum": 0}, 0, "must be greater than 0"),
        ({"exclusiveMaximum": 1.5}, 2, "must be less than 1.5"),
        ({"minimum": 1, "maximum": 10}, 11, "must be from 1 to 10"),
        ({"minimum": 1, "maximum": 10}, 0, "must be from 1 to 10"),
        ({"exclusiveMinimum": 0, "maximum": 8}, 9, "must be greater than 0 and at most 8"),
        ({"uniqueItems": True}, ["a", "b", "a"], "must not contain duplicates ('a' appears more than once)"),  # noqa: E501
    ]  # fmt: skip
    for schema, instance, message in cases:
        assert the_error(schema, instance).message == message


def test_property_names_errors_point_at_the_key() -> None:
    error = the_error({"propertyNames": {"pattern": "^ext-"}}, {"ext-a": 1, "web": 2})
    assert error.path == ("web",)  # jsonschema: () (documented difference)
    assert error.message == "invalid key 'web': does not match ^ext-"


def test_schema_error_is_frozen_and_comparable() -> None:
    error = the_error({"type": "string"}, 1)
    with pytest.raises(FrozenInstanceError):
        error.message = "changed"  # type: ignore[misc]
    assert error == the_error({"type": "string"}, 1)
    assert hash(error) == hash(the_error({"type": "string"}, 1))


# --- anyOf / oneOf heuristic --------------------------------------------------------------

MOUNT_OR_NAME = {
    "anyOf": [
        {"type": "object", "required": ["source"], "properties": {"source": {"type": "string"}}},
        {"type": "string", "minLength": 1},
    ]
}


def test_any_of_reports_the_only_branch_of_the_right_type() -> None:
    error = the_error(MOUNT_OR_NAME, {"destination": "/x"})
    assert (error.keyword, error.message) == ("required", "missing required field 'source'")
    assert error.missing_key == "source"
    assert error.schema_path == ("anyOf", 0, "required")
    error = the_error(MOUNT_OR_NAME, "")
    assert (error.keyword, error.message) == ("minLength", "must not be empty")


def test_any_of_with_no_branch_of_the_right_type_lists_the_types() -> None:
    error = the_error(MOUNT_OR_NAME, 5)
    assert error.keyword == "anyOf"
    assert error.message == "expected a mapping or a string, got an integer"
    assert error.path == ()


def test_any_of_types_are_read_through_refs_and_enums() -> None:
    schema = {
        "$defs": {"obj": {"type": "object", "required": ["a"]}},
        "anyOf": [{"$ref": "#/$defs/obj"}, {"enum": ["auto", "off"]}],
    }
    assert the_error(schema, {}).keyword == "required"
    assert the_error(schema, "on").message == "'on' is not one of 'auto', 'off'"


def test_any_of_with_several_branches_of_the_right_type_summarises() -> None:
    schema = {"anyOf": [{"required": ["a"]}, {"type": "object", "required": ["b"]}]}
    error = the_error(schema, {})
    assert error.keyword == "anyOf"
    assert error.message == (
        "does not match any allowed form (form 1: missing required field 'a'; "
        "form 2: missing required field 'b')"
    )


def test_one_of_that_matches_twice() -> None:
    error = the_error({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 3)
    assert error.keyword == "oneOf"
    assert error.message == "matches more than one allowed form (1 and 2)"


def test_one_of_uses_the_type_heuristic_too() -> None:
    schema = {"oneOf": [{"type": "string", "pattern": "^/"}, {"type": "array"}]}
    assert the_error(schema, "relative").message == "does not match ^/"


# --- $ref ---------------------------------------------------------------------------------


def test_cross_document_refs_resolve_relative_to_their_document() -> None:
    defs = {
        "definitions": {
            "uint8": {"type": "integer", "minimum": 0, "maximum": 255},
            "pair": {"type": "array", "items": {"$ref": "#/definitions/uint8"}},
        }
    }
    schema = {**D4, "properties": {"p": {"$ref": "defs.json#/definitions/pair"}}}
    validator = compile_schema(schema, {"defs.json": defs})
    assert validator.is_valid({"p": [1, 255]})
    [error] = validator.iter_errors({"p": [1, 256]})
    assert error.path == ("p", 1)
    assert error.schema_path == ("properties", "p", "$ref", "items", "$ref", "maximum")
    assert_same_as_oracle(validator, oracle_for(schema, {"defs.json": defs}), {"p": [1, 256]})


def test_recursive_refs() -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    validator = compile_schema(tree)
    good = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    bad = {"name": "a", "children": [{"name": "b", "children": [{"nam": "c"}]}]}
    assert validator.is_valid(good)
    assert {(e.path, e.keyword) for e in validator.iter_errors(bad)} == {
        (("children", 0, "children", 0), "required"),
        (("children", 0, "children", 0), "additionalProperties"),
    }
    assert_same_as_oracle(validator, oracle_for(tree), bad)


def test_ref_to_the_root() -> None:
    schema = {"type": ["integer", "array"], "items": {"$ref": "#"}}
    validator = compile_schema(schema)
    assert validator.is_valid([1, [2, [3]]])
    assert [e.path for e in validator.iter_errors([1, [2, ["x"]]])] == [(1, 1, 0)]


def test_draft4_ignores_siblings_of_ref_like_jsonschema() -> None:
    # As in config-linux.json's "personality": {"type": "object", "$ref": ...}.
    schema = {**D4, "definitions": {"s": {"type": "string"}}, "type": "object"}
    schema["properties"] = {"p": {"type": "object", "$ref": "#/definitions/s"}}
    assert compile_schema(schema).is_valid({"p": "a string"})
    assert oracle_for(schema).is_valid({"p": "a string"})


def test_fragment_without_slash_is_read_as_a_pointer() -> None:
    # defs.json's ArrayOfUint32 says "#definitions/uint32"; jsonschema raises on it when it
    # is reached, schemacheck reads the pointer that was meant (documented difference).
    array_of_uint32 = {"$schema": DRAFT4_URI, "$ref": "defs.json#/definitions/ArrayOfUint32"}
    validator = compile_schema(array_of_uint32, oci_documents())
    assert validator.is_valid([0, 4294967295])
    assert [e.keyword for e in validator.iter_errors([1, -1])] == ["minimum"]
    with pytest.raises(referencing.exceptions.Unresolvable):
        list(oracle_for(array_of_uint32, oci_documents()).iter_errors([1, -1]))


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {
            **D4,
            "definitions": {"a": {"$ref": "#/definitions/a", "type": "string"}},
            "allOf": [{"$ref": "#/definitions/a"}],
        },
    ],
)
def test_a_ref_cycle_that_constrains_nothing_fails_at_compile_time(schema: Json) -> None:
    # jsonschema recurses until RecursionError on these (draft-04 ignores the "type").
    with pytest.raises(ValueError, match="cycle"):
        compile_schema(schema)


def test_pointers_may_index_lists() -> None:
    schema = {"$defs": {"forms": [{"type": "string"}, {"type": "integer"}]}}
    schema["properties"] = {"n": {"$ref": "#/$defs/forms/1"}}
    assert compile_schema(schema).is_valid({"n": 1})
    assert not compile_schema(schema).is_valid({"n": "1"})
    with pytest.raises(ValueError, match="does not resolve"):
        compile_schema({**schema, "properties": {"n": {"$ref": "#/$defs/forms/2"}}})


@pytest.mark.parametrize(
    "ref", ["#/definitions/missing", "nowhere.json#/x", "#anchor", "defs.json#/definitions/no"]
)
def test_unresolvable_refs_fail_at_compile_time(ref: str) -> None:
    with pytest.raises(ValueError, match="\\$ref"):
        compile_schema({"definitions": {}, "properties": {"a": {"$ref": ref}}}, {"defs.json": {}})


# --- Compile-time strictness --------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"dependencies": {"a": ["b"]}},
        {"properties": {"a": {"unevaluatedProperties": False}}},
        {"items": {"additionalItems": False}},
        {"prefixItems": [{}]},
        {"$defs": {"x": {}}, "$ref": "#/$defs/x", "contains": {}},
        {"type": "any"},
        {"minLength": -1},
        {"pattern": "("},
        {"required": "a"},
        # Trimmed from the subset: no shipped schema uses them (see the module docstring).
        {"not": {"type": "string"}},
        {**D4, "minimum": 0, "exclusiveMinimum": True},
        {"$defs": {"a b": {}}, "$ref": "#/$defs/a%20b"},  # percent-encoded pointers
        # ECMA pattern features with no faithful Python spelling here.
        {"pattern": "[\\S,]"},
        {"pattern": "[^]"},
        {"items": [{}]},  # tuple form is draft-04 only
    ],
)
def test_unsupported_or_malformed_keywords_raise(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compile_schema(schema)


def test_keywords_are_only_keywords_in_schema_position() -> None:
    # The OCI schemas have properties named "type", "required", "items", ... .
    schema = {
        "properties": {
            "type": {"type": "string"},
            "required": {"type": "boolean"},
            "dependencies": {"type": "array"},
        }
    }
    validator = compile_schema(schema)
    assert validator.is_valid({"type": "bind", "required": True, "dependencies": []})
    assert not validator.is_valid({"dependencies": {}})


# --- Random schemas -----------------------------------------------------------------------

small_ints = st.integers(min_value=0, max_value=3)
numbers = st.integers(-3, 3) | st.sampled_from([0.5, -1.5, 2.0])
type_names = st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null"])
leaf_schemas = st.one_of(
    st.builds(lambda t: {"type": t}, type_names),
    st.builds(lambda ts: {"type": ts}, st.lists(type_names, min_size=1, max_size=3, unique=True)),
    st.builds(lambda n: {"minimum": n}, numbers),
    st.builds(lambda n: {"maximum": n}, numbers),
    st.builds(lambda n: {"minLength": n}, small_ints),
    st.builds(lambda n: {"maxLength": n}, small_ints),
    st.builds(lambda n: {"minItems": n}, small_ints),
    st.builds(lambda n: {"maxItems": n}, small_ints),
    st.builds(lambda n: {"minProperties": n}, small_ints),
    st.builds(lambda n: {"maxProperties": n}, small_ints),
    st.builds(lambda p: {"pattern": p}, st.sampled_from(["a", "^a", "b$", "^[a-c]+$", ".", "^.$"])),
    st.builds(lambda v: {"enum": v}, st.lists(json_scalars, min_size=1, max_size=3)),
    st.builds(lambda b: {"uniqueItems": b}, st.booleans()),
    st.builds(lambda r: {"required": r}, st.lists(st.sampled_from("abc"), max_size=2, unique=True)),
    st.just({}),
)
KEYS = st.sampled_from(["a", "b", "c", "xa", "xb"])


def _compound(inner: st.SearchStrategy[Json], modern: bool) -> st.SearchStrategy[Json]:
    options = [
        st.builds(lambda p: {"properties": p}, st.dictionaries(KEYS, inner, max_size=2)),
        st.builds(lambda p: {"patternProperties": {"^x": p}}, inner),
        st.builds(
            lambda a: {"properties": {"a": {}}, "additionalProperties": a}, inner | st.just(False)
        ),
        st.builds(lambda i: {"items": i}, inner),
        st.builds(lambda bs: {"anyOf": bs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda bs: {"oneOf": bs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda bs: {"allOf": bs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ]
    if modern:
        options += [
            st.builds(lambda v: {"const": v}, json_values),
            st.builds(lambda n: {"propertyNames": n}, inner),
            st.builds(lambda n: {"exclusiveMinimum": n}, numbers),
            st.builds(lambda n: {"exclusiveMaximum": n}, numbers),
            st.builds(lambda i, t, e: {"if": i, "then": t, "else": e}, inner, inner, inner),
        ]
    return st.one_of(options)


def random_schemas(modern: bool) -> st.SearchStrategy[Json]:
    return st.recursive(leaf_schemas, lambda inner: _compound(inner, modern), max_leaves=8)


def _comparable(errors: list[tuple[Any, Any, Any]]) -> set[tuple[Any, Any]]:
    """(path, keyword) outside anyOf/oneOf/propertyNames (documented differences)."""
    skip = ("anyOf", "oneOf", "propertyNames")
    return {(tuple(p), k) for p, k, s in errors if not any(w in s for w in skip)}


def check_random(schema: Json, instance: Json) -> None:
    validator = compile_schema(schema)
    oracle_validator = oracle_for(schema)
    expected = [
        (e.path, e.validator or "false", e.schema_path)
        for e in oracle_validator.iter_errors(instance)
    ]
    actual = [(e.path, e.keyword, e.schema_path) for e in validator.iter_errors(instance)]
    assert validator.is_valid(instance) == (not expected)
    assert bool(actual) == bool(expected)
    assert _comparable(actual) == _comparable(expected)


@settings(max_examples=300, deadline=None)
@given(random_schemas(modern=True), json_values)
def test_random_2020_12_schemas_match_jsonschema(schema: Json, instance: Json) -> None:
    check_random({"$schema": DRAFT2020_URI, **schema}, instance)


@settings(max_examples=200, deadline=None)
@given(random_schemas(modern=False), json_values)
def test_random_draft4_schemas_match_jsonschema(schema: Json, instance: Json) -> None:
    check_random({"$schema": DRAFT4_URI, **schema}, instance)


# --- Cost ---------------------------------------------------------------------------------


def test_import_is_light() -> None:
    # Only the standard library's re and dataclasses (and what they pull in) get loaded.
    code = (
        "import sys; before = set(sys.modules); import extsvc.compiler.format.schemacheck; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    loaded = set(out.split())
    assert {"extsvc.compiler.format.schemacheck", "dataclasses"} <= loaded
    assert not loaded & {"jsonschema", "referencing", "typing", "json", "yaml"}


# --- The supported subset, and patterns as ECMA-262 ----------------------------------------

# The schemas compiled by extsvc: ours, and the OCI entry points (the other OCI files are
# fragments reached through $ref).
SHIPPED_SCHEMAS = sorted((REPO / "compiler" / "format" / "schemas").glob("*.json")) + [
    OCI_SCHEMAS / name for name in CORPUS_SCHEMAS.values()
]
# Supported although no shipped schema uses them yet: what the next schemas of ours are
# expected to need. Anything else unused is trimmed.
KEPT_ON_PURPOSE = {"maxItems", "maxLength", "uniqueItems", "if", "exclusiveMaximum"}


def _reachable_schemas() -> Iterator[Json]:
    """Every subschema of the shipped schemas, following $ref into the OCI fragments."""
    documents = {**oci_documents(), **{p.name: json.loads(p.read_text()) for p in SHIPPED_SCHEMAS}}
    todo: list[tuple[str, Json]] = [(p.name, documents[p.name]) for p in SHIPPED_SCHEMAS]
    seen: set[int] = set()
    while todo:
        doc, schema = todo.pop()
        if not isinstance(schema, dict) or id(schema) in seen:
            continue
        seen.add(id(schema))
        yield schema
        subs: list[Json] = []
        for key in ("properties", "patternProperties", "definitions", "$defs"):
            subs += schema.get(key, {}).values()
        for key in ("allOf", "anyOf", "oneOf"):
            subs += schema.get(key, [])
        items = schema.get("items")
        subs += items if isinstance(items, list) else [items]
        subs += [schema.get(k) for k in ("additionalProperties", "propertyNames", "if", "then")]
        subs.append(schema.get("else"))
        todo += [(doc, sub) for sub in subs]
        if "$ref" in schema:
            target, _, pointer = schema["$ref"].partition("#")
            node = documents[target or doc]
            for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
                node = node[part]
            todo.append((target or doc, node))


def test_every_supported_keyword_is_used_by_a_shipped_schema_or_kept_on_purpose() -> None:
    from extsvc.compiler.format.schemacheck import _BUILDERS

    used = {keyword for schema in _reachable_schemas() for keyword in schema}
    assert set(_BUILDERS) - used == KEPT_ON_PURPOSE


def test_every_shipped_schema_compiles() -> None:
    """Ours and the vendored OCI ones: compile_schema raises ValueError for a keyword
    outside the supported subset, a malformed value or a $ref that does not resolve."""
    documents = oci_documents()
    refused: dict[str, str] = {}
    for path in SHIPPED_SCHEMAS:
        try:
            compile_schema(json.loads(path.read_text()), documents)
        except ValueError as error:
            refused[path.name] = str(error)
    assert refused == {}


def _shipped_patterns() -> list[str]:
    patterns: set[str] = set()
    for schema in _reachable_schemas():
        if isinstance(schema.get("pattern"), str):
            patterns.add(schema["pattern"])
        patterns.update(schema.get("patternProperties", {}))
    return sorted(patterns)


# Strings on which Python's re and ECMA-262 disagree for naive translations: a trailing
# newline ("$"), other line terminators ("."), non-ASCII digits and letters ("\d", "\w").
TRICKY_STRINGS = st.text(
    alphabet=st.sampled_from(["a", "z", "A", "0", "9", "-", "_", "/", ":", "M", "B", "K"])
    | st.sampled_from(["\n", "\r", "\u2028", "\u0663", "é", " ", "R", "L", "I", "T", "C"]),
    max_size=12,
)


@pytest.mark.parametrize("pattern", _shipped_patterns())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TRICKY_STRINGS)
def test_shipped_patterns_match_as_ecma_262(pattern: str, text: str) -> None:
    validator = compile_schema({"pattern": pattern})
    assert validator.is_valid(text) == oracles.ecma_search(pattern, text)
    assert validator.is_valid(text + "\n") == oracles.ecma_search(pattern, text + "\n")
