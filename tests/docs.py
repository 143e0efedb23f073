"""The command examples of README.md and docs/*.md, run and compared like goldens.

A fenced block that shows a command and what it prints is marked, on the line
just before its fence, with the scene it runs in::

    <!-- example: review -->
    ```
    $ extsvc plan out
    out/plan.json (amd64, 2 services)
    ...
    ```

Each ``$ `` line is a shell command (pipes allowed), run with the ``extsvc`` of
this checkout first on PATH, in a scratch directory prepared as the scene says
(``SCENES``; ``examples/`` is always there); the lines after it, up to the next
``$ `` line, are its stdout and stderr as a terminal shows them, then
``(exit N)`` when it exits non-zero (or, the block's last, prints nothing).
Scenes in ``ROOT_SCENES`` need root (the suite runs as root under CI=true). A block marked
``<!-- excerpt: PATH -->`` quotes lines of a golden file and must stay a
subsequence of that file's lines.

``python -m tests.docs --update`` (part of ``make golden``) rewrites the output
of every marked block from what the commands print now; the commands and the
prose are never touched. ``tests/test_docs.py`` fails on any difference, and on
a ``$ `` block that is not marked.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

# Scene -> the commands that prepare its directory, not shown in the docs.
SCENES: dict[str, tuple[str, ...]] = {
    "checkout": (),  # with .venv, the virtualenv the tests run in
    "examples": (),
    "rootfs": (),  # needs root (chroot)
    "review": (
        "extsvc compile examples/review/v1 -o old-out --arch amd64",
        "extsvc compile examples/review/v2 -o out --arch amd64",
    ),
}

ROOT_SCENES = frozenset({"rootfs"})
# Scenes where `extsvc` is not on PATH until the example puts it there.
NOT_ON_PATH = frozenset({"checkout"})
_MARKER = re.compile(r"^<!-- (example|excerpt): (\S+) -->$")
_FENCE = re.compile(r"^```")
PROMPT = "$ "


@dataclass(frozen=True)
class Block:
    """One fenced block: its document, the line its content starts at (0-based), its lines."""

    document: Path
    start: int
    lines: tuple[str, ...]
    kind: str | None  # "example", "excerpt", or None when unmarked
    argument: str | None  # the scene, or the excerpt's file

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.start}"

    @property
    def shows_commands(self) -> bool:
        return bool(self.lines) and self.lines[0].startswith(PROMPT)


def table_rows(document: Path, heading: str) -> list[list[str]]:
    """The cells of each body row of the first table under ``## heading`` (stripped; the
    header and its separator left out)."""
    section = document.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def blocks(document: Path) -> Iterator[Block]:
    lines = document.read_text("utf-8").splitlines()
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        marker = _MARKER.match(lines[index - 1]) if index else None
        end = next(i for i in range(index + 1, len(lines)) if _FENCE.match(lines[i]))
        yield Block(
            document,
            index + 1,
            tuple(lines[index + 1 : end]),
            marker.group(1) if marker else None,
            marker.group(2) if marker else None,
        )
        index = end + 1


def all_blocks() -> list[Block]:
    return [block for document in DOCUMENTS for block in blocks(document)]


def commands(block: Block) -> list[str]:
    return [line[len(PROMPT) :] for line in block.lines if line.startswith(PROMPT)]


def _environment(scene: str) -> dict[str, str]:
    environment = dict(os.environ)
    venv = str(Path(sys.executable).parent)
    path = [entry for entry in environment.get("PATH", "").split(os.pathsep) if entry != venv]
    if scene not in NOT_ON_PATH:
        path.insert(0, venv)  # as after `. .venv/bin/activate`
    environment.update(
        PATH=os.pathsep.join(path),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",  # stdout and stderr in the order a terminal shows them
        LC_ALL="C.UTF-8",
    )
    environment.pop("EXTSVC_STATE_DIR", None)
    environment.pop("EXTSVC_LOG_DIR", None)
    return environment


def _run(command: str, directory: Path, scene: str, last: bool) -> list[str]:
    """What ``command`` prints (stdout and stderr as one stream), then its exit when it
    failed, or when it is the block's last command and printed nothing."""
    completed = subprocess.run(
        ["sh", "-c", f"{command} 2>&1"],
        cwd=directory,
        env=_environment(scene),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
    )
    output = completed.stdout.splitlines()
    if completed.returncode != 0 or (last and not output):
        output.append(f"(exit {completed.returncode})")
    return output


@cache
def scene(name: str) -> Path:
    """The scene's directory, made once per process and removed when it exits."""
    directory = Path(tempfile.mkdtemp(prefix=f"extsvc-docs-{name}-"))
    atexit.register(shutil.rmtree, directory, True)
    (directory / "examples").symlink_to(REPO / "examples")
    (directory / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for command in SCENES[name]:
        completed = subprocess.run(
            ["sh", "-c", command],
            cwd=directory,
            env=_environment(name),
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"scene {name}: {command}: {completed.stderr}")
    return directory


def produced(block: Block) -> tuple[str, ...]:
    """The block as the commands print it now."""
    assert block.kind == "example" and block.argument is not None
    if block.argument not in SCENES:
        raise KeyError(f"{block.where}: unknown scene {block.argument!r} (tests/docs.py SCENES)")
    lines: list[str] = []
    shown = commands(block)
    for index, command in enumerate(shown, 1):
        lines.append(PROMPT + command)
        lines.extend(_run(command, scene(block.argument), block.argument, index == len(shown)))
    return tuple(lines)


def excerpt_missing(block: Block) -> list[str]:
    """Lines of an excerpt block not found, in order, in its file."""
    assert block.kind == "excerpt" and block.argument is not None
    source = iter((REPO / block.argument).read_text("utf-8").splitlines())
    return [line for line in block.lines if line not in source]


def update(document: Path) -> bool:
    """Rewrite the example blocks of ``document``; True when anything changed."""
    lines = document.read_text("utf-8").splitlines()
    # From the end, so earlier blocks keep their line numbers while later ones change size.
    for block in reversed(list(blocks(document))):
        if block.kind == "example":
            lines[block.start : block.start + len(block.lines)] = produced(block)
    text = "\n".join(lines) + "\n"
    if text == document.read_text("utf-8"):
        return False
    document.write_text(text, "utf-8")
    return True


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print("usage: python -m tests.docs --update", file=sys.stderr)
        return 2
    for document in DOCUMENTS:
        if update(document):
            print(f"updated {document.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
