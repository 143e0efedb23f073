"""A small, fast JSON Schema validator for the keyword subset extsvc uses.

Why not ``jsonschema``: importing it costs tens of milliseconds and it takes ~5 ms to check
one OCI ``config.json``; ``extsvc validate`` has ~50 ms for everything and the compiler
2 ms per service. ``jsonschema`` stays the reference oracle in the tests.

How: :func:`compile_schema` turns a schema into two closures per subschema, built once:

* ``valid(x) -> bool``, the hot path. It dispatches on ``type(x)`` to a tuple of checks
  that apply to that kind of value (a ``minimum`` never runs on a string), so validating a
  document costs roughly one dict look-up and a few calls per value.
* ``explain(x, path, schema_path)``, which yields :class:`SchemaError`\\ s. It runs only
  on values that ``valid`` rejected, and descends only into the children that fail, so it
  may be simple rather than fast.

The supported subset is what the shipped schemas use (``compiler/format/schemas/*.json``
and the vendored OCI runtime-spec ``oci-schemas/*.json``), plus the few keywords a schema
of ours is likely to want next; ``tests/compiler/test_schemacheck.py`` checks that every
keyword below is used by a shipped schema or listed there as kept on purpose:

==================  ========================================================================
objects             ``properties``, ``additionalProperties``, ``patternProperties``,
                    ``required``, ``propertyNames``, ``minProperties``, ``maxProperties``
arrays              ``items`` (one schema; draft-04 also a list, as in ``config-vm.json``),
                    ``minItems``, ``maxItems``, ``uniqueItems``
strings             ``minLength``, ``maxLength``, ``pattern`` (ECMA-262: see below)
numbers             ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``
                    (numbers, as in 2020-12; not draft-04's booleans)
any value           ``type``, ``enum``, ``const``
combinations        ``allOf``, ``anyOf``, ``oneOf``, ``if``/``then``/``else`` (no ``not``)
references          ``$ref`` to a JSON pointer in the same document or in a named document
annotations         ``$schema``, ``$id``, ``title``, ``description``, ``default``,
                    ``examples``, ``definitions``/``$defs``, ``$comment``, ``deprecated``,
                    ``format``, and extsvc's own ``x-...`` keywords (the wording of
                    errors, read by ``compiler.format.schemadiag``; Talos's lenient
                    readings, by ``compiler.format.leniency``): ignored
==================  ========================================================================

Any other keyword raises ``ValueError`` when the schema is compiled: a constraint is never
skipped silently. A ``pattern`` (or a ``patternProperties`` key) is an ECMA-262 regular
expression, as JSON Schema says: ``$`` is the end of the string, never "before a trailing
newline" as in Python, so ``^[a-z]+$`` refuses ``"hello\\n"``; see :func:`_ecma_to_python`.

Semantics follow ``jsonschema`` (the oracle) with these deliberate differences:

* The dialect is chosen once from the root schema's ``$schema``: draft-04 (or older)
  means ``1.0`` is not an ``integer`` and the siblings of ``$ref`` are ignored. Anything
  else gets 2020-12 rules.
* ``$ref`` resolves by document file name only (``$id``/``id`` neither name a document nor
  change the base; no percent-encoding, no anchors), and a fragment without its leading
  slash (``#definitions/uint32``, a typo in the OCI ``defs.json``) is read as the JSON
  pointer that was meant; ``jsonschema`` raises there.
* ``propertyNames`` errors point at ``path + (key,)`` (``jsonschema``: the object) so a
  caller can show the offending key's line.
* Error ``schema_path``\\ s keep the ``$ref`` steps taken (``jsonschema`` drops them).
* ``anyOf``/``oneOf``: see :func:`_alternatives` for when a branch's own errors are
  reported instead of one summary error.
* A ``$ref`` cycle that constrains nothing (``{"$ref": "#"}``) is a ``ValueError`` at
  compile time (``jsonschema`` recurses until ``RecursionError``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Not `from typing import TYPE_CHECKING`: importing typing alone costs a few milliseconds,
# and every annotation here is a string anyway (mypy knows this spelling).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

    Path = tuple[str | int, ...]
    # Instances are untyped JSON; a check sees only values of the kind it was filed under.
    Check = Callable[[Any], bool]
    Explain = Callable[[Any, Path, Path], Iterator["SchemaError"]]

__all__ = ["SchemaError", "Validator", "compile_schema"]


@dataclass(frozen=True)
class SchemaError:
    """One way in which an instance breaks its schema."""

    path: tuple[str | int, ...]  # location in the instance
    keyword: str  # "type", "required", "additionalProperties", ...
    message: str  # plain English, e.g. "expected a string, got an integer"
    schema_path: tuple[str | int, ...]
    # additionalProperties: the offending key and the names that were allowed
    unknown_key: str | None = None
    allowed_keys: tuple[str, ...] = ()
    # required: the missing key
    missing_key: str | None = None


class Validator:
    """A compiled schema. Build one with :func:`compile_schema` and reuse it."""

    __slots__ = ("_node",)

    def __init__(self, node: _Node) -> None:
        self._node = node

    def is_valid(self, instance: object) -> bool:
        return self._node.valid(instance)

    def iter_errors(self, instance: object) -> Iterator[SchemaError]:
        # The fast check first: a valid document never pays for error reporting.
        if not self._node.valid(instance):
            yield from self._node.explain(instance, (), ())


def compile_schema(
    schema: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]] | None = None
) -> Validator:
    """Compile ``schema``; ``documents`` maps file names to the schemas ``$ref`` may name.

    Raises ``ValueError`` for a keyword outside the supported subset, a malformed keyword
    value or a ``$ref`` that does not resolve.
    """
    docs = dict(documents or {})
    root_name = next((name for name, doc in docs.items() if doc is schema), "")
    docs[root_name] = schema
    draft4 = _is_draft4(schema.get("$schema"))
    return Validator(_Compiler(docs, draft4).resolve("#", root_name, ()))


def _is_draft4(dialect: object) -> bool:
    return isinstance(dialect, str) and any(d in dialect for d in ("draft-03", "draft-04"))


# --- Kinds of JSON values ---------------------------------------------------------------

# The Python types a parsed JSON/YAML document is made of, mapped to the group of keywords
# that apply to them. ``object`` stands for anything else.
_GROUP = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    object: "other",
}
_TYPE_NAMES = ("object", "array", "string", "integer", "number", "boolean", "null")
_EXPECTED = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true/false)",
    "null": "null",
}
_GOT = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _base_type(x: object) -> type:
    """The JSON type ``x`` counts as, for subclasses (bool before int: bool is an int)."""
    for t in (bool, int, float, str, dict, list):
        if isinstance(x, t):
            return t
    return type(None) if x is None else object


def _group(x: object) -> str:
    group = _GROUP.get(type(x))
    return _GROUP[_base_type(x)] if group is None else group


def _has_type(x: object, name: str, draft4: bool) -> bool:
    if isinstance(x, bool):
        return name == "boolean"
    if name == "integer":
        # Since draft-06 a float with an integral value is an integer; draft-04 says no.
        return isinstance(x, int) or (not draft4 and isinstance(x, float) and x.is_integer())
    if name == "number":
        return isinstance(x, int | float)
    return _group(x) == name


# --- Messages ---------------------------------------------------------------------------


_SHOW_INT_BITS = 200  # about 60 digits, as long as a string is shown


def show_value(value: object) -> str:
    """A short rendering of a value for a message, in JSON/YAML spelling."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > _SHOW_INT_BITS:
        # str() of an int over 4,300 digits raises ValueError (Python's limit),
        # and a YAML "!!int 0x..." can be far longer; no one reads such a number.
        return f"an integer of {int(math.log10(abs(value))) + 1:,} digits"
    if isinstance(value, int | float):
        return repr(value)
    return _GOT.get(_base_type(value), type(value).__name__)


def _got(x: object) -> str:
    return _GOT.get(_base_type(x), f"a {type(x).__name__}")


def _either(phrases: list[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _canon(x: object) -> object:
    """A hashable key with JSON equality: 1 == 1.0, but true != 1 and false != 0."""
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, str | int | float):
        return x
    if x is None:
        return ("null",)
    if isinstance(x, list):
        return ("array", tuple(_canon(v) for v in x))
    if isinstance(x, dict):
        return ("object", frozenset((k, _canon(v)) for k, v in x.items()))
    return ("other", id(x))  # not JSON: equal to nothing else


# --- Compiled form ----------------------------------------------------------------------


def _always(x: object) -> bool:
    return True


def _never(x: object) -> bool:
    return False


def _no_errors(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
    return iter(())


class _Node:
    """One compiled subschema. Filled in after creation so recursive ``$ref``\\ s can point
    at a node whose compilation is still under way."""

    __slots__ = ("explain", "ready", "valid")

    def __init__(self) -> None:
        self.valid: Check = _always
        self.explain: Explain = _no_errors
        self.ready = False

    def fill(self, valid: Check, explain: Explain) -> _Node:
        self.valid, self.explain, self.ready = valid, explain, True
        return self

    def checker(self) -> Check:
        """``valid`` itself when known, else a trampoline that looks it up at call time."""
        if self.ready:
            return self.valid
        return lambda x: self.valid(x)


class _Rule:
    """What one keyword (or a group of keywords evaluated together) contributes."""

    __slots__ = ("explain", "group", "valid")

    def __init__(self, group: str | None, valid: Check, explain: Explain) -> None:
        self.group = group  # the value group the keyword applies to; None: every value
        self.valid = valid
        self.explain = explain


_ANNOTATIONS = frozenset(
    {"$schema", "$id", "id", "title", "description", "default", "examples", "definitions"}
    | {"$defs", "$comment", "deprecated", "format"}
    # then/else only mean something next to "if", whose builder reads them.
    | {"then", "else"}
)
_NOT_RULES = _ANNOTATIONS | {"type"}  # "type" is folded into each node's dispatch table


def _is_annotation(keyword: str) -> bool:
    # "x-..." keywords are extsvc's own annotations (the wording of errors, read by
    # compiler.format.schemadiag; Talos's lenient readings, by compiler.format.leniency):
    # they never constrain a value.
    return keyword in _ANNOTATIONS or keyword.startswith("x-")


class _Compiler:
    def __init__(self, documents: dict[str, Mapping[str, Any]], draft4: bool) -> None:
        self.documents = documents
        self.draft4 = draft4
        self.refs: dict[tuple[str, Path], _Node] = {}
        self.type_nodes: dict[tuple[str, ...] | None, _Node] = {}
        self.type_tables: dict[tuple[str, ...] | None, dict[type, tuple[Check, ...]]] = {}
        self.raw_refs: dict[tuple[str, str], _Node] = {}  # (document, $ref text) -> target
        # Targets being compiled that were reached through bare $refs only, since the last
        # schema with a constraint: meeting one again is a cycle that would never end.
        self.bare_refs: set[tuple[str, Path]] = set()

    # -- schemas -------------------------------------------------------------------------

    def compile(self, schema: object, doc: str, where: Path) -> _Node:
        """Compile the subschema found at ``where`` in document ``doc``."""
        if schema is True:
            return _Node().fill(_always, _no_errors)
        if schema is False:
            return _Node().fill(_never, _false_errors)
        if not isinstance(schema, dict):
            raise ValueError(f"{_loc(doc, where)}: a schema must be an object or a boolean")
        unknown = [
            k for k in schema if k not in _BUILDERS and k not in _NOT_RULES and k[:2] != "x-"
        ]
        if unknown:
            raise ValueError(f"{_loc(doc, where)}: unsupported schema keyword(s) {unknown}")
        if "$ref" in schema and (self.draft4 or sum(not _is_annotation(k) for k in schema) == 1):
            # Draft-04 ignores the siblings of $ref; in 2020-12 a lone $ref is the target.
            return self.ref_node(schema["$ref"], doc, where)
        types = _type_names(schema.get("type"), _loc(doc, where))
        # A real constraint is evaluated before any further $ref: a cycle through it is fine.
        saved, self.bare_refs = self.bare_refs, set()
        rules = self._keyword_rules(schema, doc, where)
        self.bare_refs = saved
        return self._assemble(types, rules)

    def _keyword_rules(
        self, schema: dict[str, Any], doc: str, where: Path
    ) -> list[tuple[str, _Rule]]:
        rules = []
        built = set()
        for key in schema:
            builder = _BUILDERS.get(key)
            # Some keywords are evaluated together (properties + additionalProperties, ...):
            # one builder handles the group, at the place of its first keyword.
            if builder is None or builder in built:
                continue
            built.add(builder)
            rule = builder(self, schema, doc, where)
            if rule is not None:
                rules.append((key, rule))
        return rules

    def _assemble(self, types: tuple[str, ...] | None, rules: list[tuple[str, _Rule]]) -> _Node:
        if not rules:
            return self._type_node(types)
        by_group: dict[str | None, list[Check]] = {}
        for _, rule in rules:
            by_group.setdefault(rule.group, []).append(rule.valid)
        common = by_group.get(None, [])
        type_table = self._type_table(types)
        table = {
            t: type_table[t] + tuple(common + by_group.get(group, []))
            for t, group in _GROUP.items()
        }
        explains = [rule for _, rule in rules]
        if types is not None:
            explains.insert(0, _type_rule(types, self.draft4))
        return _Node().fill(_make_valid(table), _make_explain(explains))

    def _type_node(self, types: tuple[str, ...] | None) -> _Node:
        """A schema that is only a ``type`` (the commonest leaf): one node per type list."""
        node = self.type_nodes.get(types)
        if node is None:
            table = self._type_table(types)
            explain = (
                _no_errors if types is None else _make_explain([_type_rule(types, self.draft4)])
            )
            node = self.type_nodes[types] = _Node().fill(_make_valid(table), explain)
        return node

    def _type_table(self, types: tuple[str, ...] | None) -> dict[type, tuple[Check, ...]]:
        """Per Python type, the checks that the ``type`` keyword adds (memoized)."""
        table = self.type_tables.get(types)
        if table is None:
            table = self.type_tables[types] = {t: self._type_checks(t, types) for t in _GROUP}
        return table

    def _type_checks(self, t: type, types: tuple[str, ...] | None) -> tuple[Check, ...]:
        """The checks the ``type`` keyword adds for values of Python type ``t``."""
        if types is None:
            return ()
        if t is int:
            accepted = "integer" in types or "number" in types
        elif t is float:
            if "integer" in types and "number" not in types and not self.draft4:
                return (_is_integral,)  # since draft-06, 1.0 is an integer
            accepted = "number" in types
        else:
            accepted = _GROUP[t] in types
        return () if accepted else (_never,)

    # -- $ref ----------------------------------------------------------------------------

    def ref_node(self, ref: object, doc: str, where: Path) -> _Node:
        """A node for a ``$ref``: the target's check, errors with "$ref" in the path."""
        target = self.resolve(ref, doc, where)
        wrapper = _Node()
        wrapper.valid = target.checker()
        wrapper.explain = lambda x, p, s: target.explain(x, p, (*s, "$ref"))
        wrapper.ready = True
        return wrapper

    def resolve(self, ref: object, doc: str, where: Path) -> _Node:
        """The node a ``$ref`` names, compiled once per (document, pointer)."""
        if not isinstance(ref, str):
            raise ValueError(f"{_loc(doc, where)}: $ref must be a string")
        node = self.raw_refs.get((doc, ref))
        if node is not None:
            return node
        key = self._split_ref(ref, doc, where)
        node = self.refs.get(key)
        if node is None:
            # Register before compiling, so a recursive $ref finds this (unready) node.
            node = self.refs[key] = _Node()
            schema = _follow(self.documents[key[0]], key[1], ref, _loc(doc, where))
            self.bare_refs.add(key)
            compiled = self.compile(schema, *key)
            self.bare_refs.discard(key)
            node.fill(compiled.checker(), compiled.explain)
        elif key in self.bare_refs:
            raise ValueError(f"{_loc(doc, where)}: $ref {ref!r} is a cycle with no constraint")
        self.raw_refs[doc, ref] = node
        return node

    def _split_ref(self, ref: str, doc: str, where: Path) -> tuple[str, Path]:
        uri, _, fragment = ref.partition("#")
        target = doc if not uri else self._document_named(uri, doc, where)
        if fragment and not fragment.startswith("/"):
            if "/" not in fragment:
                raise ValueError(f"{_loc(doc, where)}: $ref anchors are not supported: {ref}")
            fragment = "/" + fragment  # "#definitions/x": the pointer that was meant
        parts = fragment.split("/")[1:] if fragment else []
        return target, tuple(p.replace("~1", "/").replace("~0", "~") for p in parts)

    def _document_named(self, uri: str, doc: str, where: Path) -> str:
        for name in (uri, uri.rsplit("/", 1)[-1]):
            if name in self.documents:
                return name
        raise ValueError(f"{_loc(doc, where)}: $ref names an unknown document {uri!r}")

    def static_types(self, schema: object, doc: str, depth: int = 0) -> frozenset[str] | None:
        """The JSON types a schema can accept, judged from ``type``/``enum``/``const`` and
        ``$ref`` alone; None when that says nothing (any type may be fine)."""
        if not isinstance(schema, dict) or depth > 20:
            return None
        if "$ref" in schema:
            target_doc, pointer = self._split_ref(schema["$ref"], doc, ())
            target = _follow(self.documents[target_doc], pointer, "", "")
            types = self.static_types(target, target_doc, depth + 1)
            if types is not None or self.draft4:
                return types
        if "type" in schema:
            return frozenset(_type_names(schema["type"], "") or ())
        values = schema.get("enum", [schema["const"]] if "const" in schema else None)
        if isinstance(values, list):
            return frozenset(_type_of_value(v) for v in values)
        return None


def _loc(doc: str, where: Path) -> str:
    return f"{doc or '<schema>'}#/{'/'.join(map(str, where))}"


def _follow(document: object, pointer: Path, ref: str, loc: str) -> object:
    node = document
    for part in pointer:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"{loc}: $ref {ref!r} does not resolve")
    return node


def _type_names(value: object, loc: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(n in _TYPE_NAMES for n in names):
        raise ValueError(f"{loc}: unsupported type {value!r}")
    return tuple(names)


def _type_of_value(value: object) -> str:
    group = _group(value)
    if group == "number":
        return "integer" if isinstance(value, int) else "number"
    return group


def _is_integral(x: float) -> bool:
    return x.is_integer()


# --- The two closures of a subschema ----------------------------------------------------


def _make_valid(table: dict[type, tuple[Check, ...]]) -> Check:
    """The fast predicate for one subschema, specialised on how much work there is.

    Hot loops here and in the keyword checks are written out instead of ``all(...)`` over
    a generator: on the short sequences that dominate, the loop is about 4x faster.
    """
    if all(not checks for checks in table.values()):
        return _always
    if all(checks in ((), (_never,)) for checks in table.values()):
        return _type_only(frozenset(t for t, checks in table.items() if not checks))
    if all(len(checks) <= 1 for checks in table.values()):
        single = {t: checks[0] if checks else _always for t, checks in table.items()}
        get_one = single.get

        def valid_one(x: object) -> bool:
            check = get_one(type(x))
            return (single[_base_type(x)] if check is None else check)(x)

        return valid_one
    get = table.get

    def valid(x: object) -> bool:
        checks = get(type(x))
        if checks is None:
            checks = table[_base_type(x)]
        for check in checks:  # noqa: SIM110 (see _make_valid)
            if not check(x):
                return False
        return True

    return valid


def _type_only(accepted: frozenset[type]) -> Check:
    """A schema that only constrains the type: a set look-up on the exact type."""

    def valid(x: object) -> bool:
        t = type(x)
        return t in accepted or (t not in _GROUP and _base_type(x) in accepted)

    return valid


def _make_explain(rules: list[_Rule]) -> Explain:
    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        group = _group(x)
        for rule in rules:
            if rule.group is None or rule.group == group:
                yield from rule.explain(x, path, spath)

    return explain


def _false_errors(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
    yield SchemaError(path, "false", "is not allowed here", spath)


def _type_rule(types: tuple[str, ...], draft4: bool) -> _Rule:
    expected = _either([_EXPECTED[t] for t in types])

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        if not any(_has_type(x, t, draft4) for t in types):
            message = f"expected {expected}, got {_got(x)}"
            yield SchemaError(path, "type", message, (*spath, "type"))

    return _Rule(None, _always, explain)


def _simple_rule(group: str | None, keyword: str, check: Check, message: str) -> _Rule:
    """A keyword whose failure is one error with a fixed message."""

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        if not check(x):
            yield SchemaError(path, keyword, message, (*spath, keyword))

    return _Rule(group, check, explain)


# --- Keywords: objects ------------------------------------------------------------------


def _properties(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    """properties, patternProperties and additionalProperties, in one pass over the keys."""
    props = {
        name: c.compile(sub, doc, (*where, "properties", name))
        for name, sub in _mapping(schema, "properties", _loc(doc, where)).items()
    }
    patterns = [
        (_regex(p), p, c.compile(sub, doc, (*where, "patternProperties", p)))
        for p, sub in _mapping(schema, "patternProperties", _loc(doc, where)).items()
    ]
    extra = schema.get("additionalProperties", True)
    closed = extra is False  # reported as "unknown field", with the names that were allowed
    rest = (
        None if extra is True or closed else c.compile(extra, doc, (*where, "additionalProperties"))
    )
    checks = {name: node.checker() for name, node in props.items()}
    valid = _members_valid(
        checks, [(rx.search, n.checker()) for rx, _, n in patterns], rest, closed
    )
    allowed = tuple(props)

    def explain(x: dict[Any, Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        for key, value in x.items():
            node = props.get(key)
            if node is not None and not node.valid(value):
                yield from node.explain(value, (*path, key), (*spath, "properties", key))
            matched = node is not None
            for rx, text, sub in patterns:
                if isinstance(key, str) and rx.search(key):
                    matched = True
                    if not sub.valid(value):
                        yield from sub.explain(
                            value, (*path, key), (*spath, "patternProperties", text)
                        )
            if matched:
                continue
            if closed:
                message = f"unknown field {show_value(key)}"
                yield SchemaError(
                    path,
                    "additionalProperties",
                    message,
                    (*spath, "additionalProperties"),
                    unknown_key=str(key),
                    allowed_keys=allowed,
                )
            elif rest is not None and not rest.valid(value):
                yield from rest.explain(value, (*path, key), (*spath, "additionalProperties"))

    return _Rule("object", valid, explain)


def _members_valid(
    props: dict[str, Check],
    patterns: list[tuple[Callable[[str], object], Check]],
    rest: _Node | None,
    closed: bool,
) -> Check:
    get = props.get
    if not patterns and rest is None:
        if closed:

            def closed_valid(x: dict[Any, Any]) -> bool:
                for key, value in x.items():
                    check = get(key)
                    if check is None or not check(value):
                        return False
                return True

            return closed_valid

        def open_valid(x: dict[Any, Any]) -> bool:
            for key, value in x.items():
                check = get(key)
                if check is not None and not check(value):
                    return False
            return True

        return open_valid
    rest_check = None if rest is None else rest.checker()

    def valid(x: dict[Any, Any]) -> bool:
        for key, value in x.items():
            check = get(key)
            if check is not None and not check(value):
                return False
            matched = check is not None
            for search, sub in patterns:
                if isinstance(key, str) and search(key):
                    if not sub(value):
                        return False
                    matched = True
            if not matched and (closed or (rest_check is not None and not rest_check(value))):
                return False
        return True

    return valid


def _required(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    names = schema["required"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{_loc(doc, where)}: required must be a list of strings")

    def valid(x: dict[Any, Any]) -> bool:
        for name in names:  # noqa: SIM110 (see _make_valid)
            if name not in x:
                return False
        return True

    def explain(x: dict[Any, Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        for name in names:
            if name not in x:
                message = f"missing required field {name!r}"
                yield SchemaError(path, "required", message, (*spath, "required"), missing_key=name)

    return _Rule("object", valid, explain)


def _property_names(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    node = c.compile(schema["propertyNames"], doc, (*where, "propertyNames"))
    check = node.checker()

    def valid(x: dict[Any, Any]) -> bool:
        for key in x:  # noqa: SIM110 (see _make_valid)
            if not check(key):
                return False
        return True

    def explain(x: dict[Any, Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        for key in x:
            if not node.valid(key):
                # Point at the key itself (jsonschema points at the object) and say so.
                for e in node.explain(key, (*path, key), (*spath, "propertyNames")):
                    message = f"invalid key {show_value(key)}: {e.message}"
                    yield SchemaError(e.path, e.keyword, message, e.schema_path)

    return _Rule("object", valid, explain)


def _min_properties(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "minProperties", doc, where)
    message = "must not be empty" if n == 1 else f"must have at least {_plural(n, 'field')}"
    return _simple_rule("object", "minProperties", lambda x: len(x) >= n, message)


def _max_properties(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "maxProperties", doc, where)
    message = f"must have at most {_plural(n, 'field')}"
    return _simple_rule("object", "maxProperties", lambda x: len(x) <= n, message)


# --- Keywords: arrays -------------------------------------------------------------------


def _items(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    if isinstance(schema["items"], list):
        return _tuple_items(c, schema["items"], doc, where)
    node = c.compile(schema["items"], doc, (*where, "items"))
    check = node.checker()

    def valid(x: list[Any]) -> bool:
        for item in x:  # noqa: SIM110 (see _make_valid)
            if not check(item):
                return False
        return True

    def explain(x: list[Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        for index, item in enumerate(x):
            if not node.valid(item):
                yield from node.explain(item, (*path, index), (*spath, "items"))

    return _Rule("array", valid, explain)


def _tuple_items(c: _Compiler, subs: list[Any], doc: str, where: Path) -> _Rule:
    """Draft-04 tuple form: item i against schema i; items past the list are free (the
    OCI config-vm.json uses it; additionalItems stays unsupported)."""
    if not c.draft4:
        raise ValueError(f"{_loc(doc, where)}: a list of items schemas is draft-04 only")
    nodes = [c.compile(sub, doc, (*where, "items", i)) for i, sub in enumerate(subs)]
    checks = [n.checker() for n in nodes]

    def valid(x: list[Any]) -> bool:
        return all(check(item) for check, item in zip(checks, x, strict=False))

    def explain(x: list[Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        for index, (node, item) in enumerate(zip(nodes, x, strict=False)):
            if not node.valid(item):
                yield from node.explain(item, (*path, index), (*spath, "items", index))

    return _Rule("array", valid, explain)


def _min_items(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "minItems", doc, where)
    message = "must not be empty" if n == 1 else f"must have at least {_plural(n, 'item')}"
    return _simple_rule("array", "minItems", lambda x: len(x) >= n, message)


def _max_items(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "maxItems", doc, where)
    message = f"must have at most {_plural(n, 'item')}"
    return _simple_rule("array", "maxItems", lambda x: len(x) <= n, message)


def _unique_items(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule | None:
    if schema["uniqueItems"] is not True:
        return None

    def valid(x: list[Any]) -> bool:
        return len({_canon(item) for item in x}) == len(x)

    def explain(x: list[Any], path: Path, spath: Path) -> Iterator[SchemaError]:
        seen = set()
        for item in x:
            key = _canon(item)
            if key in seen:
                message = f"must not contain duplicates ({show_value(item)} appears more than once)"
                yield SchemaError(path, "uniqueItems", message, (*spath, "uniqueItems"))
                return
            seen.add(key)

    return _Rule("array", valid, explain)


# --- Keywords: strings ------------------------------------------------------------------


def _min_length(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "minLength", doc, where)
    message = "must not be empty" if n == 1 else f"must be at least {_plural(n, 'character')} long"
    return _simple_rule("string", "minLength", lambda x: len(x) >= n, message)


def _max_length(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    n = _count(schema, "maxLength", doc, where)
    message = f"must be at most {_plural(n, 'character')} long"
    return _simple_rule("string", "maxLength", lambda x: len(x) <= n, message)


def _pattern(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    text = schema["pattern"]
    search = _regex(text).search
    # re.search semantics (not a full match), like jsonschema.
    return _simple_rule(
        "string", "pattern", lambda x: search(x) is not None, f"does not match {text}"
    )


def _regex(text: object) -> re.Pattern[str]:
    if not isinstance(text, str):
        raise ValueError(f"a pattern must be a string, not {text!r}")
    try:
        return re.compile(_ecma_to_python(text), re.ASCII)
    except re.error as err:
        raise ValueError(f"invalid pattern {text!r}: {err}") from err


# ECMA-262 ``.`` matches anything but a line terminator; Python's ``.`` excludes only "\n".
_ECMA_DOT = "[^\n\r\u2028\u2029]"
# ECMA-262 ``\s``: WhiteSpace and LineTerminator (Python's ASCII ``\s`` lacks the Unicode ones).
_ECMA_SPACES = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def _ecma_to_python(pattern: str) -> str:
    r"""The Python spelling of an ECMA-262 pattern (what JSON Schema says a pattern is).

    Python's ``$`` also matches before a trailing newline, so ``^[a-z]+$`` would accept
    ``"hello\n"``; ECMA's ``$`` (without the m flag) is the end of the input only: ``\Z``.
    ``.`` and ``\s``/``\S`` are spelt out as the ECMA character sets, and ``re.ASCII``
    gives ``\d``, ``\w`` and ``\b`` their ECMA (ASCII) meaning. The rare forms with no
    simple spelling here (``\S`` inside a class, ECMA's empty classes ``[]``/``[^]``) are
    refused when the schema is compiled.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            char = pattern[i : i + 2]
            if char == "\\s":
                char = _ECMA_SPACES if in_class else f"[{_ECMA_SPACES}]"
            elif char == "\\S":
                if in_class:
                    raise ValueError(f"pattern {pattern!r}: \\S inside [...] is not supported")
                char = f"[^{_ECMA_SPACES}]"
            out.append(char)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            if pattern.startswith(("[]", "[^]"), i):
                raise ValueError(f"pattern {pattern!r}: [] and [^] are not supported")
            in_class = True
        elif char == "$":
            char = "\\Z"
        elif char == ".":
            char = _ECMA_DOT
        out.append(char)
        i += 1
    return "".join(out)


# --- Keywords: numbers ------------------------------------------------------------------


# keyword -> (is a lower bound, strict)
_BOUND_KEYWORDS = {
    "minimum": (True, False),
    "exclusiveMinimum": (True, True),
    "maximum": (False, False),
    "exclusiveMaximum": (False, True),
}
# (is a lower bound, strict) -> how the message says it
_BOUND_WORDS = {
    (True, False): "at least",
    (True, True): "greater than",
    (False, False): "at most",
    (False, True): "less than",
}


def _bounds(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    """minimum, maximum, exclusiveMinimum and exclusiveMaximum (numbers, as in 2020-12)."""
    limits: list[tuple[str, float, bool, bool]] = []
    for keyword, (lower, strict) in _BOUND_KEYWORDS.items():
        if keyword not in schema:
            continue
        bound = schema[keyword]
        if not isinstance(bound, int | float) or isinstance(bound, bool):
            # Draft-04's boolean exclusiveMinimum included: no shipped schema uses it.
            raise ValueError(f"{_loc(doc, where)}: {keyword} must be a number")
        limits.append((keyword, bound, lower, strict))

    def valid(x: float) -> bool:
        for _, bound, lower, strict in limits:  # noqa: SIM110 (see _make_valid)
            if _out_of_bound(x, bound, lower, strict):
                return False
        return True

    # With a lower and an upper bound, a message names the whole range: a value refused
    # for being too large says how small it may be too.
    words = " and ".join(
        f"{_BOUND_WORDS[lower, strict]} {show_value(bound)}" for _, bound, lower, strict in limits
    )
    if [keyword for keyword, *_ in limits] == ["minimum", "maximum"]:
        words = f"from {show_value(limits[0][1])} to {show_value(limits[1][1])}"

    def explain(x: float, path: Path, spath: Path) -> Iterator[SchemaError]:
        # One error per keyword that fails, as jsonschema reports them.
        for keyword, bound, lower, strict in limits:
            if _out_of_bound(x, bound, lower, strict):
                yield SchemaError(path, keyword, f"must be {words}", (*spath, keyword))

    return _Rule("number", valid, explain)


def _out_of_bound(x: float, bound: float, lower: bool, strict: bool) -> bool:
    # Written with < and > only: NaN compares false, so (as in jsonschema) it is in range.
    if lower:
        return x < bound or (strict and x == bound)
    return x > bound or (strict and x == bound)


def _count(schema: dict[str, Any], key: str, doc: str, where: Path) -> int:
    n = schema[key]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{_loc(doc, where)}: {key} must be a non-negative integer")
    return n


# --- Keywords: any value ----------------------------------------------------------------


def _enum(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    values = schema["enum"]
    if not isinstance(values, list):
        raise ValueError(f"{_loc(doc, where)}: enum must be a list")
    keys = frozenset(_canon(v) for v in values)
    shown = ", ".join(show_value(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")

    def valid(x: object) -> bool:
        # Strings are their own key; everything else goes through _canon (true != 1).
        return (x in keys) if type(x) is str else (_canon(x) in keys)

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        if not valid(x):
            message = (
                f"must be {shown}" if len(values) == 1 else f"{show_value(x)} is not one of {shown}"
            )
            yield SchemaError(path, "enum", message, (*spath, "enum"))

    return _Rule(None, valid, explain)


def _const(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    value = schema["const"]
    key = _canon(value)
    message = f"must be {show_value(value)}"

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        if _canon(x) != key:
            yield SchemaError(path, "const", f"{message}, got {show_value(x)}", (*spath, "const"))

    return _Rule(None, lambda x: _canon(x) == key, explain)


def _branches(
    c: _Compiler, schema: dict[str, Any], keyword: str, doc: str, where: Path
) -> list[_Node]:
    subs = schema[keyword]
    if not isinstance(subs, list) or not subs:
        raise ValueError(f"{_loc(doc, where)}: {keyword} must be a non-empty list")
    return [c.compile(sub, doc, (*where, keyword, i)) for i, sub in enumerate(subs)]


def _all_of(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    nodes = _branches(c, schema, "allOf", doc, where)
    checks = [n.checker() for n in nodes]

    def valid(x: object) -> bool:
        for check in checks:  # noqa: SIM110 (see _make_valid)
            if not check(x):
                return False
        return True

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        for i, node in enumerate(nodes):
            yield from node.explain(x, path, (*spath, "allOf", i))

    return _Rule(None, valid, explain)


def _any_of(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    return _alternatives(c, schema, "anyOf", doc, where)


def _one_of(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    return _alternatives(c, schema, "oneOf", doc, where)


def _alternatives(
    c: _Compiler, schema: dict[str, Any], keyword: str, doc: str, where: Path
) -> _Rule:
    """anyOf / oneOf.

    Error heuristic: when exactly one branch accepts the value's *type* (judged from the
    branches' ``type``/``enum``/``const``, through ``$ref``), the user clearly meant that
    branch, so its own errors are reported ("missing required field 'x'") instead of a
    vague "does not match any allowed form". Otherwise one error at the anyOf/oneOf
    location summarises each branch's first error.
    """
    nodes = _branches(c, schema, keyword, doc, where)
    checks = [n.checker() for n in nodes]
    types = [c.static_types(sub, doc) for sub in schema[keyword]]
    draft4 = c.draft4

    valid = _any_valid(checks) if keyword == "anyOf" else _one_valid(checks)

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        here = (*spath, keyword)
        matches = [i for i, check in enumerate(checks) if check(x)]
        if matches:
            if keyword == "oneOf" and len(matches) > 1:
                forms = _either([str(i + 1) for i in matches]).replace(" or ", " and ")
                yield SchemaError(
                    path, keyword, f"matches more than one allowed form ({forms})", here
                )
            return
        fits = [
            i
            for i, ts in enumerate(types)
            if ts is None or any(_has_type(x, t, draft4) for t in ts)
        ]
        if len(fits) == 1:
            yield from nodes[fits[0]].explain(x, path, (*here, fits[0]))
        elif not fits:
            expected = sorted({t for ts in types if ts for t in ts}, key=_TYPE_NAMES.index)
            message = f"expected {_either([_EXPECTED[t] for t in expected])}, got {_got(x)}"
            yield SchemaError(path, keyword, message, here)
        else:
            yield SchemaError(path, keyword, _summary(nodes, fits, x, path, here), here)

    return _Rule(None, valid, explain)


def _any_valid(checks: list[Check]) -> Check:
    def valid(x: object) -> bool:
        for check in checks:  # noqa: SIM110 (see _make_valid)
            if check(x):
                return True
        return False

    return valid


def _one_valid(checks: list[Check]) -> Check:
    def valid(x: object) -> bool:
        return sum(1 for check in checks if check(x)) == 1

    return valid


def _summary(nodes: list[_Node], fits: list[int], x: object, path: Path, here: Path) -> str:
    parts = []
    for i in fits:
        first = next(iter(nodes[i].explain(x, path, (*here, i))), None)
        if first is not None:
            where = "/".join(map(str, first.path[len(path) :]))
            parts.append(f"form {i + 1}: {where + ': ' if where else ''}{first.message}")
    return "does not match any allowed form (" + "; ".join(parts) + ")"


def _if(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    cond = c.compile(schema["if"], doc, (*where, "if")).checker()
    then = c.compile(schema.get("then", True), doc, (*where, "then"))
    orelse = c.compile(schema.get("else", True), doc, (*where, "else"))
    then_check, else_check = then.checker(), orelse.checker()

    def valid(x: object) -> bool:
        return then_check(x) if cond(x) else else_check(x)

    def explain(x: object, path: Path, spath: Path) -> Iterator[SchemaError]:
        if cond(x):
            yield from then.explain(x, path, (*spath, "then"))
        else:
            yield from orelse.explain(x, path, (*spath, "else"))

    return _Rule(None, valid, explain)


def _ref(c: _Compiler, schema: dict[str, Any], doc: str, where: Path) -> _Rule:
    node = c.ref_node(schema["$ref"], doc, where)
    return _Rule(None, node.valid, node.explain)


def _mapping(schema: dict[str, Any], key: str, loc: str) -> dict[str, Any]:
    value = schema.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{loc}: {key} must be an object")
    return value


_BUILDERS: dict[str, Callable[[_Compiler, dict[str, Any], str, Path], _Rule | None]] = {
    "properties": _properties,
    "patternProperties": _properties,
    "additionalProperties": _properties,
    "required": _required,
    "propertyNames": _property_names,
    "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "items": _items,
    "minItems": _min_items,
    "maxItems": _max_items,
    "uniqueItems": _unique_items,
    "minLength": _min_length,
    "maxLength": _max_length,
    "pattern": _pattern,
    "minimum": _bounds,
    "maximum": _bounds,
    "exclusiveMinimum": _bounds,
    "exclusiveMaximum": _bounds,
    "enum": _enum,
    "const": _const,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "if": _if,
    "$ref": _ref,
}
