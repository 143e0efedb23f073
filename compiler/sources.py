"""Sources: find and read the input files (the loader's side of the I/O edge).

A directory contributes its ``*.yaml`` files, not recursively, as Talos scans
``/usr/local/etc/containers``; a file named explicitly is read whatever its
name. Unreadable paths become diagnostics, except a permission denied: it
ends the command with one line (extsvc.cli), as it does every other command.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity
from extsvc.compiler.format.load import MAX_FILE_BYTES, DocumentResult, iter_documents


@dataclass(frozen=True)
class SourceFile:
    name: str  # as the user would write it: used in diagnostics only
    data: bytes

    @cached_property
    def documents(self) -> tuple[DocumentResult, ...]:
        """Every YAML document of the file with its problems (``iter_documents``), parsed
        on first use and kept: a file whose kind is told by its first document (``extsvc
        validate``, a source directory for ``diff``/``explain``) is then checked or
        compiled from the same documents, not parsed again. Nothing may modify them."""
        return tuple(iter_documents(self.name, self.data))


def _problem(name: str, message: str, severity: Severity = Severity.ERROR) -> Diagnostic:
    return Diagnostic(file=name, position=Position(1, 1), severity=severity, message=message)


# O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer, so
# fstat can refuse it (opened blocking, a FIFO no one writes to would hang compile); on a
# regular file it changes nothing.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _read(path: Path) -> SourceFile | Diagnostic:
    name = str(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except PermissionError:
        raise
    except OSError as error:
        return _problem(name, f"cannot read: {error.strerror or error}")
    with os.fdopen(fd, "rb") as stream:
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                kind = next((k for test, k in _KINDS if test(status.st_mode)), "not a file")
                return _problem(name, f"not a regular file ({kind}); a service file is expected")
            if status.st_size > MAX_FILE_BYTES:  # say so without reading a huge file
                return _problem(
                    name,
                    f"file is too large ({status.st_size} bytes; the limit is {MAX_FILE_BYTES})",
                )
            data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            return _problem(name, f"cannot read: {error.strerror or error}")
    return SourceFile(name, data)


def _skipped(directory: Path) -> str:
    """``; skipped a.yml, b.YAML (...)`` for files that look like service files but are not
    read, as Talos does not read them; empty when there are none."""
    names = sorted(
        p.name
        for p in directory.iterdir()
        if p.suffix.lower() in (".yml", ".yaml") and p.suffix != ".yaml"
    )
    if not names:
        return ""
    return f"; skipped {', '.join(names)}: Talos loads *.yaml only (rename to .yaml)"


def collect_sources(
    paths: Sequence[str], already: Sequence[SourceFile] = ()
) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read every file named or found in a named directory, in a stable order, each once:
    a file named twice, or one of ``already`` (read by an earlier call), is skipped."""
    sources: list[SourceFile] = []
    problems: list[Diagnostic] = []
    seen = {os.path.realpath(source.name) for source in already}
    for argument in paths:
        path = Path(argument)
        if path.is_dir():
            # Everything named *.yaml but a directory: a FIFO or a device among them is
            # refused by _read, not skipped silently.
            found = sorted(p for p in path.iterdir() if p.suffix == ".yaml" and not p.is_dir())
            skipped = _skipped(path)
            if not found:
                problems.append(
                    _problem(
                        argument, f"no *.yaml files in this directory{skipped}", Severity.WARNING
                    )
                )
            elif skipped:
                problems.append(_problem(argument, skipped.removeprefix("; "), Severity.WARNING))
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
