"""Environment files (``container.environmentFile``), read as Talos reads them.

Talos parses them with HashiCorp's go-envparse; this is the same syntax, written as
a lark grammar. One ``KEY=VALUE`` per line:

* blank lines and lines starting with ``#`` are skipped; leading and trailing
  whitespace of a line is dropped;
* ``export KEY=VALUE`` is ``KEY=VALUE``; a key starts with a letter or ``_`` and
  holds letters, digits, ``_``, ``.`` and ``/``;
* a value is any mix of unquoted text (ends at ``#``, a quote or the end of the
  line; whitespace around it is dropped), single-quoted text (literal) and
  double-quoted text (JSON escapes: ``\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX``);
  an unquoted ``#`` starts a comment; a control character (a tab too) is an error.

A key set twice keeps its first place and its last value (go-envparse's
``Pairs.Set``). Talos then puts the variables into a Go map, so their order in the
container is random; extsvc keeps the file's order, so a spec is deterministic.

Values are secrets: diagnostics name keys and positions, never a value, and show
no source line.

lark costs ~20 ms to import and the grammar a few more to build, so both happen on
the first environment file, never for ``extsvc validate`` of plain service files.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity
from extsvc.compiler.format.load import decode_text

if TYPE_CHECKING:
    import lark

GRAMMAR = r"""
?line: COMMENT | assignment
assignment: (_EXPORT)? KEY _WS? "=" _WS? value?
value: _part+ COMMENT?
_part: UNQUOTED | DOUBLE_QUOTED | SINGLE_QUOTED

_EXPORT.2: /export (?=[^ =])/
KEY: /[A-Za-z_][A-Za-z0-9_.\/]*/
_WS: /[ \t]+/
UNQUOTED: /[^"'#\x00-\x1f]+/
DOUBLE_QUOTED: /"(?:[^"\\\x00-\x1f]|\\[^\x00-\x1f])*"/
SINGLE_QUOTED: /'[^'\x00-\x1f]*'/
COMMENT: /#[^\n]*/
"""

_JSON_ESCAPES = frozenset('"\\/bfnrtu')


@cache
def _parser() -> lark.Lark:
    import lark  # here, not at the top: see the module docstring

    return lark.Lark(GRAMMAR, start="line", parser="lalr", lexer="contextual")


class _LineError(Exception):
    def __init__(self, col: int, message: str) -> None:
        super().__init__(message)
        self.col = col  # 0-based, in the stripped line
        self.message = message


def parse_env_file(file: str, data: bytes) -> tuple[list[str], list[Diagnostic]]:
    """``KEY=VALUE`` entries in the file's order, and every problem (one per bad line)."""
    text, problems = decode_text(file, data)
    if text is None:
        # The excerpt of a line that is not UTF-8 may hold a value: leave it out.
        return [], [_problem(file, d.position, d.message) for d in problems]
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        try:
            key, value = _parse_line(stripped)
        except _LineError as error:
            problems.append(_problem(file, Position(number, indent + error.col + 1), error.message))
            continue
        if key in values:
            problems.append(
                _problem(
                    file,
                    Position(number, indent + 1),
                    f"{key} is set again (first on line {first_line[key]}): the last value wins",
                    Severity.WARNING,
                )
            )
        else:
            first_line[key] = number
        values[key] = value
    return [f"{key}={value}" for key, value in values.items()], problems


def _problem(
    file: str, position: Position, message: str, severity: Severity = Severity.ERROR
) -> Diagnostic:
    return Diagnostic(file, position, severity, message)


def _parse_line(line: str) -> tuple[str, str]:
    import lark

    if "=" not in line:
        raise _LineError(0, "expected KEY=VALUE: there is no '='")
    try:
        tree = _parser().parse(line)
    except lark.UnexpectedInput as error:
        raise _explain(line, error.column - 1) from None
    return _assignment(tree)


def _explain(line: str, col: int) -> _LineError:
    """go-envparse's reason for a line the grammar refused at ``col``."""
    equals = line.index("=")
    if col < equals or (col == equals and not line[:equals].strip()):
        return _key_error(line, equals)
    char = line[col] if col < len(line) else ""
    if char == '"':
        return _LineError(col, 'unmatched " (a double-quoted value must end on its line)')
    if char == "'":
        return _LineError(col, "unmatched ' (a single-quoted value must end on its line)")
    if char and ord(char) < 32:
        return _LineError(col, f"control character 0x{ord(char):02x} in the value of {_key(line)}")
    return _LineError(col, f"unexpected {char!r} in the value of {_key(line)}")


def _key(line: str) -> str:
    key = line[: line.index("=")].strip()
    return key.removeprefix("export ") if len(key) > len("export ") else key


def _key_error(line: str, equals: int) -> _LineError:
    raw = line[:equals]
    key = raw.rstrip()
    start = len("export ") if len(key) > len("export ") and key.startswith("export ") else 0
    if not key[start:]:
        return _LineError(0, "empty key before '='")
    first = key[start]
    if not (first.isascii() and (first.isalpha() or first == "_")):
        return _LineError(start, f"a key starts with a letter or '_', found {first!r}")
    for index in range(start + 1, len(key)):
        char = key[index]
        if not (char.isascii() and (char.isalnum() or char in "_./")):
            allowed = "letters, digits, '_', '.' and '/'"
            return _LineError(index, f"a key holds {allowed}, found {char!r}")
    return _LineError(len(key), f"unexpected {line[len(key)]!r} before '='")


def _assignment(tree: Any) -> tuple[str, str]:
    key_token = tree.children[0]
    value_tree = tree.children[1] if len(tree.children) > 1 else None
    parts: list[str] = []
    last_unquoted = False
    for token in value_tree.children if value_tree is not None else ():
        kind = token.type
        if kind == "COMMENT":
            break
        last_unquoted = kind == "UNQUOTED"
        if kind == "UNQUOTED":
            # Whitespace after '=' is not part of the value.
            parts.append(str(token) if parts else str(token).lstrip(" "))
        elif kind == "SINGLE_QUOTED":
            parts.append(str(token)[1:-1])
        else:
            parts.append(_double_quoted(str(token), token.column - 1, str(key_token)))
    if last_unquoted:
        # Whitespace before a trailing comment is not part of the value.
        parts[-1] = parts[-1].rstrip(" ")
    return str(key_token), "".join(parts)


def _double_quoted(token: str, col: int, key: str) -> str:
    """Decode a double-quoted part with JSON's escapes (json.loads does exactly that)."""
    index = token.find("\\")
    while index != -1:
        escape = token[index + 1]
        if escape not in _JSON_ESCAPES:
            message = f"invalid escape sequence \\{escape} in the value of {key}"
            raise _LineError(col + index, message)
        if escape == "u" and not _is_hex4(token[index + 2 : index + 6]):
            raise _LineError(col + index, f"incomplete \\u escape in the value of {key}")
        index = token.find("\\", index + 2)
    try:
        decoded: str = json.loads(token)
    except ValueError:
        raise _LineError(col, f"invalid escape in the value of {key}") from None
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _is_hex4(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)
