"""Sources: find and read the input files (the loader's side of the I/O edge).

A directory contributes its ``*.yaml`` files, not recursively, as Talos scans
``/usr/local/etc/containers``; a file named explicitly is read whatever its
name. Unreadable paths become diagnostics, never exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity
from extsvc.compiler.format.load import MAX_FILE_BYTES


@dataclass(frozen=True)
class SourceFile:
    name: str  # as the user would write it: used in diagnostics only
    data: bytes


def _problem(name: str, message: str, severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(file=name, position=Position(1, 1), severity=severity, message=message)


def _read(path: Path) -> SourceFile | Diagnostic:
    name = str(path)
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_FILE_BYTES:  # say so without reading a huge file
                return _problem(
                    name, f"file is too large ({size} bytes; the limit is {MAX_FILE_BYTES})"
                )
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        return _problem(name, f"cannot read: {error.strerror or error}")
    return SourceFile(name, data)


def collect_sources(paths: Sequence[str]) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read every file named or found in a named directory, in a stable order."""
    sources: list[SourceFile] = []
    problems: list[Diagnostic] = []
    seen: set[str] = set()
    for argument in paths:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".yaml" and p.is_file())
            if not found:
                problems.append(
                    _problem(argument, "no *.yaml files in this directory", Severity.WARNING)
                )
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            problems.append(_problem(argument, "no such file or directory"))
            continue
        for file in found:
            key = os.path.realpath(file)
            if key in seen:  # named twice (a file and its directory): read once
                continue
            seen.add(key)
            result = _read(file)
            (sources if isinstance(result, SourceFile) else problems).append(result)  # type: ignore[arg-type]
    return sources, problems
