"""Source positions: where each field of a loaded document was written, and how to name it.

A field is named by its ``FieldPath`` (keys and list indexes from the document's
root); ``format_path`` spells one the way every diagnostic does
(``container.mounts[1].type``). A ``SourceMap`` holds, for one document, the
position of every key and value ``compiler.format.load`` recorded, and turns a
problem at a field into a ``Diagnostic`` at the right line and column.

Pure and cheap to import (no YAML here): modules that only point at fields of an
already loaded tree need this, not the loader. A path the map does not know falls
back to its nearest known ancestor, and at the very least to line 1, column 1:
asking for a position never fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """("container", "mounts", 1, "type") -> "container.mounts[1].type"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if len(part) <= 60 else part[:57] + "..."  # a key can be huge
            text += f".{key}" if text else key
    return text


def value_at(tree: Any, path: FieldPath) -> Any:
    """The value at ``path`` in a loaded tree, or None where the path leads nowhere (a
    missing key, or something else than a mapping on the way)."""
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


@dataclass(frozen=True)
class SourceMap:
    """Where each field of one document came from, for diagnostics and provenance."""

    file: str
    lines: tuple[str, ...]
    keys: Mapping[FieldPath, Position] = field(default_factory=dict)
    values: Mapping[FieldPath, Position] = field(default_factory=dict)

    def value_position(self, path: FieldPath) -> Position:
        """Position of the value at ``path``, or of its nearest known ancestor."""
        for length in range(len(path), -1, -1):
            found = self.values.get(path[:length])
            if found is not None:
                return found
        return Position(1, 1)

    def key_position(self, path: FieldPath) -> Position:
        """Position of the key naming ``path`` (falls back to the value)."""
        return self.keys.get(path) or self.value_position(path)

    def line(self, position: Position) -> str | None:
        index = position.line - 1
        return self.lines[index] if 0 <= index < len(self.lines) else None

    def diagnostic(
        self,
        path: FieldPath,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        hint: str | None = None,
        at_key: bool = False,
    ) -> Diagnostic:
        position = self.key_position(path) if at_key else self.value_position(path)
        return Diagnostic(
            file=self.file,
            position=position,
            severity=severity,
            message=message,
            field=format_path(path),
            hint=hint,
            source_line=self.line(position),
        )
