"""Diagnostics: errors and warnings as values, each tied to a place in a file.

Every stage returns diagnostics instead of raising or printing; only the CLI
prints them (``render``) and picks the exit code. The format is the one
compilers use, so editors and CI annotators can parse it::

    services/a.yaml:4:5: error: container.security.writableRootfs: unknown field
        writableRootfs: true
        ^
      hint: did you mean 'writeableRootfs'?
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column in a source file."""

    line: int
    col: int


@dataclass(frozen=True)
class Diagnostic:
    file: str
    position: Position
    severity: Severity
    message: str
    # Dotted path of the field it is about ("container.mounts[1].destination");
    # empty for problems of the file as a whole (unreadable, invalid YAML).
    field: str = ""
    hint: str | None = None
    # The offending source line, for the caret display (None when unknown).
    source_line: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def headline(self) -> str:
        """``file:line:col: severity: field: message`` (one line, control characters escaped)."""
        where = f"{self.file}:{self.position.line}:{self.position.col}"
        field = f"{self.field}: " if self.field else ""
        return escape(f"{where}: {self.severity.value}: {field}{self.message}")

    def render(self) -> str:
        """The headline, the source line with a caret under the column, the hint.

        Every part comes from the input (file names, keys, values), so every part
        is escaped: no newline, ESC, BEL or other control character of a hostile
        file reaches the terminal, and no line can pass for another diagnostic.
        """
        lines = [self.headline()]
        if self.source_line is not None:
            text, caret = _excerpt(self.source_line.rstrip("\r\n"), self.position.col - 1)
            # Keep tabs so the caret lines up under tab-indented text too.
            shown = escape(text, keep_tabs=True)
            before = escape(text[:caret], keep_tabs=True)
            lines.append("    " + shown)
            pad = "".join(c if c == "\t" else " " for c in before)
            lines.append("    " + pad + "^")
        if self.hint:
            lines.append(escape(f"  hint: {self.hint}"))
        return "\n".join(lines)

    def github_annotation(self) -> str:
        """The diagnostic as a GitHub Actions workflow command (an annotation on the line)."""
        where = (
            f"file={_escape_property(self.file)},line={self.position.line},"
            f"col={self.position.col},title=extsvc"
        )
        field = f"{self.field}: " if self.field else ""
        hint = f"\nhint: {self.hint}" if self.hint else ""
        return f"::{self.severity.value} {where}::{_escape_data(field + self.message + hint)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# What must never reach a terminal raw: C0 and C1 control characters (newline,
# carriage return, ESC, BEL, ...), DEL, the Unicode line and paragraph
# separators, and the invisible marks and bidirectional overrides that make
# text display in another order than it reads ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_BUT_TAB = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str, *, keep_tabs: bool = False) -> str:
    """``text`` with every control character written as a Python escape (``\\n``,
    ``\\x1b``, ``\\u202e``); ``keep_tabs`` keeps tabs, for indented source lines."""
    return (_UNSAFE_BUT_TAB if keep_tabs else _UNSAFE).sub(_escape_one, text)


def short_repr(text: str, width: int = 60) -> str:
    """``text`` quoted for a message and cut to ``width`` characters: a value or a
    key of hostile input can be a megabyte long."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


# What stands for a value that may be a secret, wherever one is left out: a diagnostic's
# source line, ``compile --dry-run``, ``diff`` and ``explain`` (one spelling everywhere).
SECRET_MASK = "***"


def mask_entry(entry: str) -> str:
    """An environment entry with its value masked and its key kept: ``KEY=***``."""
    return entry.partition("=")[0] + "=" + SECRET_MASK


def hide_value(diagnostic: Diagnostic, keep: int = 0, blank_from: int | None = None) -> Diagnostic:
    """``diagnostic`` with its source line cut ``keep`` characters after the column and
    the rest replaced by ``***``: for values that may be secrets (environment entries).

    ``blank_from`` (a 1-based column before the diagnostic's) also blanks the text
    between it and the column, where a flow list (``[A=1, B=2]``) shows other
    values; blanks, not a marker, so the caret stays under the column.
    """
    line = diagnostic.source_line
    if line is None:
        return diagnostic
    col = diagnostic.position.col
    start = col if blank_from is None else min(blank_from, col)
    shown = line[: start - 1] + " " * (col - start) + line[col - 1 : col - 1 + keep]
    return replace(diagnostic, source_line=shown + SECRET_MASK)


EXCERPT_WIDTH = 120


def _excerpt(line: str, caret: int) -> tuple[str, int]:
    """At most EXCERPT_WIDTH characters of ``line`` around ``caret`` (a generated
    file can have a line of megabytes), and the caret's index in the excerpt."""
    if len(line) <= EXCERPT_WIDTH:
        return line, caret
    start = max(0, min(caret - EXCERPT_WIDTH // 2, len(line) - EXCERPT_WIDTH))
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + EXCERPT_WIDTH < len(line) else ""
    return prefix + line[start : start + EXCERPT_WIDTH] + suffix, caret - start + len(prefix)


def sort_key(diagnostic: Diagnostic) -> tuple[str, Position, str]:
    return (diagnostic.file, diagnostic.position, diagnostic.message)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


# "Did you mean" runs difflib over every known field name, ~0.2 ms a key: a file
# of 49,000 unknown keys took 9 s. Past this many unknown keys in one document
# they are not typos, and the hint only lists what is allowed (schemadiag); past
# this many lenient readings, only a difference of case makes a key a slip (leniency).
MAX_SUGGESTIONS = 20


def did_you_mean(word: str, candidates: Sequence[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    # Case differences (writeablerootfs) are the most common slip: check them first.
    for candidate in candidates:
        if candidate.lower() == word.lower():
            return f"did you mean '{candidate}'?"
    import difflib  # only when there is something to suggest: it is slow to import

    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return f"did you mean '{matches[0]}'?" if matches else None
