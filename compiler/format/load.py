"""Load: YAML bytes -> a plain tree (dicts, lists, scalars) plus where each part was.

Pure: takes the bytes of one file, returns a ``LoadedDocument`` (the tree and its
``SourceMap``, ``compiler.format.sourcemap``) or diagnostics. Reading files is the
job of ``compiler.sources``.

Talos reads these files with go-yaml v3, which follows YAML 1.2: ``yes``/``on``
are strings, not booleans, and ``2024-01-01`` is a string, not a date. PyYAML
speaks YAML 1.1, so the implicit type rules are replaced here to match.

Hostile input must not hang or exhaust memory: the file size, the nesting
depth and the number of nodes after alias expansion (the "billion laughs"
attack) are all bounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity, short_repr
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap, format_path

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

# YAML 1.2 core schema, as go-yaml v3 resolves plain scalars.
_CORE_RESOLVERS: tuple[tuple[str, str, str], ...] = (
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
)

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml when present) with YAML 1.2 core scalar resolution."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL, _MERGE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in _CORE_RESOLVERS:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@dataclass(frozen=True)
class LoadedDocument:
    tree: Any
    source_map: SourceMap


class _Abort(Exception):
    """Stops the conversion of a document that exceeds a limit."""

    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


@dataclass
class _Converter:
    """Turns composed YAML nodes into plain values, recording positions."""

    file: str
    keys: dict[FieldPath, Position] = field(default_factory=dict)
    values: dict[FieldPath, Position] = field(default_factory=dict)
    problems: list[tuple[yaml.Node, FieldPath, str]] = field(default_factory=list)
    node_count: int = 0
    # Mappings being merged into the one being converted, innermost last: an
    # anchor can be merged into itself (``&c {<<: *c}``) or a chain of merges
    # can be long, and neither goes through ``convert``'s depth check.
    merging: list[yaml.Node] = field(default_factory=list)

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _Abort(
                f"document expands to more than {MAX_NODES} nodes "
                "(YAML aliases nested too deep?); refusing to load it",
                node,
            )
        if len(path) > MAX_DEPTH:
            raise _Abort(f"document is nested more than {MAX_DEPTH} levels deep", node)
        self.values.setdefault(path, _position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.problems.append((node, path, f"unsupported YAML tag {_short_tag(node.tag)}"))
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problems.append((node, path, f"unsupported YAML tag {_short_tag(node.tag)}"))
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (_STR, _INT, _BOOL):
                self.problems.append((key_node, path, "mapping keys must be plain strings"))
                continue
            key = key_node.value
            child = (*path, key)
            if key in result:
                self.problems.append((key_node, child, f"duplicate key {short_repr(key)}"))
                continue
            # setdefault: a key set by the mapping itself keeps its position
            # when a merged anchor (converted later) has the same key.
            self.keys.setdefault(child, _position(key_node))
            result[key] = self.convert(value_node, child)
        self._merge(merges, path, result)
        return result

    def _merge(self, merges: list[yaml.Node], path: FieldPath, result: dict[str, Any]) -> None:
        """``<<: *anchor`` (or a list of anchors): keys the mapping itself sets win,
        then earlier anchors win over later ones, as in YAML's merge-key spec."""
        for merge_value in merges:
            sources = (
                merge_value.value if isinstance(merge_value, yaml.SequenceNode) else [merge_value]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.problems.append(
                        (source, path, "a merge key (<<) needs a mapping or a list of them")
                    )
                    continue
                if any(source is merged for merged in self.merging):
                    self.problems.append(
                        (merge_value, path, "a merge key (<<) merges a mapping into itself")
                    )
                    continue
                if len(path) + len(self.merging) >= MAX_DEPTH:
                    raise _Abort(
                        f"merge keys (<<) nested more than {MAX_DEPTH} levels deep", source
                    )
                self.merging.append(source)
                try:
                    merged = self._mapping(source, path)
                finally:
                    self.merging.pop()
                for key, value in merged.items():
                    result.setdefault(key, value)

    def _scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        text: str = node.value
        tag = node.tag
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            # An explicit !!int bypasses the resolver's pattern, so the text can be
            # anything ("!!int 0xZZ"); a decimal of more than 4,300 digits is refused
            # by int() itself (Python's int<->str limit).
            try:
                return int(text, 0 if text.startswith(("0o", "0x")) else 10)
            except ValueError:
                pass
        elif tag == _FLOAT:
            lowered = text.lower().lstrip("+")
            if lowered in (".inf", "-.inf", ".nan"):
                return {".inf": math.inf, "-.inf": -math.inf}.get(lowered, math.nan)
            try:
                return float(text)
            except ValueError:
                pass
        # The value is not repeated: it may be a secret (an environment entry, a
        # config file); the position and the source line say which one it is.
        if tag in (_INT, _FLOAT):
            kind = "an integer" if tag == _INT else "a number"
            self.problems.append((node, path, f"value tagged {_short_tag(tag)} is not {kind}"))
        else:
            self.problems.append((node, path, f"unsupported YAML tag {_short_tag(tag)}"))
        return text


def _short_tag(tag: str) -> str:
    """A tag as written in YAML ("!!int"), cut to 60 characters."""
    tag = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return tag if len(tag) <= 60 else tag[:57] + "..."


_YAML_TAG = "tag:yaml.org,2002:"


def _position(node: yaml.Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


def _file_diagnostic(
    file: str, message: str, position: Position, lines: tuple[str, ...]
) -> Diagnostic:
    index = position.line - 1
    return Diagnostic(
        file=file,
        position=position,
        severity=Severity.ERROR,
        message=message,
        source_line=lines[index] if 0 <= index < len(lines) else None,
    )


def decode_text(file: str, data: bytes) -> tuple[str | None, list[Diagnostic]]:
    """UTF-8 text of a file, or a diagnostic at the first byte that is not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        message = f"file is too large ({len(data)} bytes; the limit is {MAX_FILE_BYTES})"
        return None, [_file_diagnostic(file, message, Position(1, 1), ())]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        # Everything before the bad byte is valid UTF-8: count characters, not
        # bytes, so the column agrees with every other diagnostic.
        before = data[: error.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        lines = tuple(data.decode("utf-8", errors="replace").splitlines())
        message = f"file is not UTF-8 text (byte 0x{data[error.start]:02x})"
        return None, [_file_diagnostic(file, message, Position(line, col), lines)]
    return text.removeprefix("\ufeff"), []


# libyaml 0.2.6 (in PyYAML 6.0.4's wheels) stops at 1,000 levels with this problem, and
# it can do so while scanning ahead, before the events of level 65 are handed out.
_LIBYAML_NESTING_LIMIT = "exceeded maximum nesting depth"


def _check_depth(text: str) -> tuple[str, Position] | None:
    """The first place nested deeper than MAX_DEPTH, found on the event stream.

    libyaml parses iteratively, but composing nodes recurses once per level in
    C: a 100 kB file of '[' would overflow the stack and kill the process. So
    the depth is checked on events, before anything is composed.
    """
    try:
        return _first_too_deep(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        if error.problem != _LIBYAML_NESTING_LIMIT or mark is None:
            raise
        # Level 65 comes before where libyaml gave up: look again in the text up to there
        # (a different error there, or none, leaves libyaml's own).
        try:
            found = _first_too_deep(text[: mark.index])
        except yaml.YAMLError:
            found = None
        if found is None:
            raise
        return found


def _first_too_deep(text: str) -> tuple[str, Position] | None:
    depth = -1  # the document's root collection is not nested in anything
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
                return f"document is nested more than {MAX_DEPTH} levels deep", position
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _text_position(text: str, index: int) -> Position:
    before = text[:index]
    return Position(before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1)


def _is_empty_document(node: yaml.Node | None) -> bool:
    # A trailing "---" opens an empty document; go-yaml reads only the first
    # document of a file anyway, so an empty one after it is no problem.
    return node is None or (
        isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.value == ""
    )


def compose_documents(file: str, text: str) -> tuple[list[yaml.Node], list[Diagnostic]]:
    """Parse YAML text into node trees (one per document), or a syntax diagnostic."""
    lines = tuple(text.splitlines())
    try:
        too_deep = _check_depth(text)
        if too_deep is not None:
            message, position = too_deep
            return [], [_file_diagnostic(file, message, position, lines)]
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = error.problem or "syntax error"
        context = f" ({error.context})" if error.context else ""
        return [], [_file_diagnostic(file, f"invalid YAML: {problem}{context}", position, lines)]
    except yaml.reader.ReaderError as error:  # control characters and the like
        position = _text_position(text, error.position)
        message = f"invalid YAML: unacceptable character #x{error.character:04x}: {error.reason}"
        return [], [_file_diagnostic(file, message, position, lines)]
    except yaml.YAMLError as error:
        return [], [_file_diagnostic(file, f"invalid YAML: {error}", Position(1, 1), lines)]
    first, rest = nodes[:1], [node for node in nodes[1:] if not _is_empty_document(node)]
    return [*first, *rest], []


def convert_document(
    file: str, text: str, node: yaml.Node
) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Turn one composed document into a plain tree with its source map."""
    lines = tuple(text.splitlines())
    converter = _Converter(file)
    try:
        tree = converter.convert(node, ())
    except _Abort as abort:
        return None, [_file_diagnostic(file, abort.message, _position(abort.node), lines)]
    source_map = SourceMap(file, lines, converter.keys, converter.values)
    diagnostics = [
        Diagnostic(
            file=file,
            position=_position(bad),
            severity=Severity.ERROR,
            message=message,
            field=format_path(path),
            source_line=source_map.line(_position(bad)),
        )
        for bad, path, message in converter.problems
    ]
    return LoadedDocument(tree, source_map), diagnostics


# One document of a file, None when it cannot be loaded, and its problems.
DocumentResult = tuple[LoadedDocument | None, list[Diagnostic]]


def iter_documents(file: str, data: bytes) -> Iterator[DocumentResult]:
    """Every document of a file, each with its diagnostics; a file-level problem yields once."""
    text, problems = decode_text(file, data)
    if text is None:
        yield None, problems
        return
    nodes, problems = compose_documents(file, text)
    if problems:
        yield None, problems
        return
    for node in nodes:
        yield convert_document(file, text, node)
