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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
        """``file:line:col: severity: field: message`` (one line)."""
        where = f"{self.file}:{self.position.line}:{self.position.col}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity.value}: {field}{self.message}"

    def render(self) -> str:
        lines = [self.headline()]
        if self.source_line is not None:
            text, caret = _excerpt(self.source_line.rstrip("\r\n"), self.position.col - 1)
            lines.append("    " + text)
            # Keep tabs so the caret lines up under tab-indented text too.
            pad = "".join(c if c == "\t" else " " for c in text[:caret])
            lines.append("    " + pad + "^")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


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


def did_you_mean(word: str, candidates: Sequence[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    # Case differences (writeablerootfs) are the most common slip: check them first.
    for candidate in candidates:
        if candidate.lower() == word.lower():
            return f"did you mean '{candidate}'?"
    import difflib  # only when there is something to suggest: it is slow to import

    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return f"did you mean '{matches[0]}'?" if matches else None
