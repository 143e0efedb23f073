"""Bad input: every wrong service file is refused with exact diagnostics, and nothing is written.

Each folder under ``bad_inputs/`` is one failure mode (see ``bad_inputs/README.md``):
its ``*.yaml`` files and ``expected.txt``, the diagnostic headlines (and hints) the
compiler must print for them. For every case:

* ``extsvc compile <files> -o OUT`` exits 1, prints no traceback and leaves OUT exactly
  as it was (a previous output, byte for byte), with no temporary directory beside it;
* it prints exactly the diagnostics of ``expected.txt``, each followed by the offending
  source line and a caret under the reported column, sorted by file and position;
* ``extsvc validate <files>`` exits 1 and prints the same diagnostics, in whatever
  order the files are given.

The CLI runs in-process (click's ``CliRunner``) with the case folder as the working
directory, so file names in the output are the ones in ``expected.txt``. YAML syntax
messages are libyaml's (PyYAML's wheels ship it; ``compiler.load`` prefers it).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format.diagnostics import SECRET_MASK, escape

CASES_ROOT = Path(__file__).parent / "bad_inputs"
CASES = sorted(path for path in CASES_ROOT.iterdir() if path.is_dir())

EXPECTED_FILE = "expected.txt"
KNOWN_BUG_FILE = "known-bug.txt"

HEADLINE = re.compile(
    r"^(?P<file>\S+?):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning): (?P<text>.*)$"
)
HINT_PREFIX = "  hint: "
ELLIPSIS = "…"
SOURCE_INDENT = "    "
COMPILE_SUMMARY = re.compile(r"^extsvc: nothing written: \d+ errors?, \d+ warnings?$")
VALIDATE_SUMMARY = re.compile(r"^(\d+ of )?\d+ files? invalid: \d+ errors?, \d+ warnings?$")

# What a previous `extsvc compile` left in OUT; a failed compile must not touch it.
PREVIOUS_OUTPUT = {
    "plan.json": b'{"sentinel": "previous output: a failed compile must leave this alone"}\n',
    "bundles/old/config.json": b'{"ociVersion": "1.3.0"}\n',
}

# Bytes some fixtures exist for; an editor or a checkout that "fixes" them would
# silently turn the case into a different one.
SPECIAL_BYTES = {
    "not-utf8": b"\xfc",
    "not-utf8-after-multibyte": b"\xfc",
    "yaml-control-character": b"\x07",
    "yaml-tab-indentation": b"\n\t",
    "crlf-line-endings": b"\r\n",
}


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


def case_files(case: Path) -> list[str]:
    return sorted(path.name for path in case.glob("*.yaml"))


def extsvc(case: Path, *args: str) -> Run:
    """Run the real CLI in-process, in the case folder; a Python exception propagates."""
    with contextlib.chdir(case):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def compile_case(case: Path, out: Path, files: list[str] | None = None) -> Run:
    return extsvc(case, "compile", *(files or case_files(case)), "-o", str(out), "--arch", "amd64")


def validate_case(case: Path, files: list[str] | None = None) -> Run:
    return extsvc(case, "validate", *(files or case_files(case)))


def pinned_lines(stderr: str) -> list[str]:
    """The lines ``expected.txt`` pins: diagnostic headlines and hints."""
    return [
        line for line in stderr.splitlines() if HEADLINE.match(line) or line.startswith(HINT_PREFIX)
    ]


def expected_lines(case: Path) -> list[str]:
    return (case / EXPECTED_FILE).read_text("utf-8").splitlines()


def known_bug(case: Path) -> str | None:
    path = case / KNOWN_BUG_FILE
    return " ".join(path.read_text("utf-8").split()) if path.exists() else None


def source_line(path: Path, number: int) -> str | None:
    """The line of the file: bytes that are not UTF-8 become U+FFFD, as the compiler
    shows them (which also escapes control characters, ``escape``)."""
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return lines[number - 1] if 0 < number <= len(lines) else None


def shows_line(shown: str, actual: str) -> bool:
    """The source line as printed is the file's line (control characters escaped), or,
    for a value that may be a secret, its start with the value cut off as ``***`` and
    other values of the line before the caret blanked; a long line may be shown as a
    window of it, cut with "…"."""
    if shown == actual:
        return True
    if shown.startswith(ELLIPSIS) or shown.endswith(ELLIPSIS):  # a window of a long line
        return shown.strip(ELLIPSIS) in actual
    if not shown.endswith(SECRET_MASK):
        return False
    kept = shown.removesuffix(SECRET_MASK)
    return len(kept) <= len(actual) and all(
        a == b or a == " " for a, b in zip(kept, actual, strict=False)
    )


def layout_problems(case: Path, stderr: str) -> list[str]:
    """Where the printed diagnostics break their layout.

    Every diagnostic is a headline, then usually that very line of the file indented
    by four spaces and a caret line with the ``^`` under the reported column (a
    problem of the whole file, such as "file is empty", may leave them out), then
    an optional hint. The last line is the summary. Headlines come sorted by file,
    then line, then column.
    """
    problems: list[str] = []
    lines = stderr.splitlines()
    body = lines[:-1]
    positions: list[tuple[str, int, int]] = []
    index = 0
    while index < len(body):
        match = HEADLINE.match(body[index])
        if match is None:
            problems.append(
                f"stderr line {index + 1} is not a diagnostic headline: {body[index]!r}"
            )
            index += 1
            continue
        file, line, col = match["file"], int(match["line"]), int(match["col"])
        positions.append((file, line, col))
        index += 1
        if index < len(body) and body[index].startswith(SOURCE_INDENT):
            shown = body[index][len(SOURCE_INDENT) :]
            caret = body[index + 1] if index + 1 < len(body) else ""
            actual = escape(source_line(case / file, line) or "", keep_tabs=True)
            if not shows_line(shown, actual):
                problems.append(f"{file}:{line}: shows {shown!r}, but that line is {actual!r}")
            pad = caret[len(SOURCE_INDENT) : -1]
            before = escape((source_line(case / file, line) or "")[: col - 1], keep_tabs=True)
            if not caret.endswith("^") or pad.strip(" \t") or len(pad) != len(before):
                problems.append(
                    f"{file}:{line}:{col}: caret line {caret!r} is not under column {col}"
                )
            index += 2
        if index < len(body) and body[index].startswith(HINT_PREFIX):
            index += 1
    if positions != sorted(positions):
        problems.append(f"diagnostics are not sorted by file and position: {positions}")
    return problems


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file -> bytes, directory -> None."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


@pytest.fixture
def previous_output(tmp_path: Path) -> Path:
    """OUT holding a previous compile's files, alone in its parent directory."""
    out = tmp_path / "out"
    for relative, data in PREVIOUS_OUTPUT.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(data)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_folder_is_well_formed(case: Path) -> None:
    """A case is input files plus expected.txt (and maybe known-bug.txt); nothing else,
    so a misnamed file cannot be silently ignored."""
    names = {path.name for path in case.iterdir()}
    assert case_files(case), "no *.yaml input"
    assert EXPECTED_FILE in names
    assert names - set(case_files(case)) <= {EXPECTED_FILE, KNOWN_BUG_FILE}
    assert any(HEADLINE.match(line) for line in expected_lines(case)), "expected.txt pins nothing"


@pytest.mark.parametrize("name", sorted(SPECIAL_BYTES))
def test_fixture_keeps_its_special_bytes(name: str) -> None:
    case = CASES_ROOT / name
    assert any(SPECIAL_BYTES[name] in (case / file).read_bytes() for file in case_files(case))


def test_empty_file_fixture_is_empty() -> None:
    assert (CASES_ROOT / "empty-file" / "hello.yaml").read_bytes() == b""


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_compile_refuses_and_leaves_output_untouched(case: Path, previous_output: Path) -> None:
    """Rule: invalid input -> exit 1, diagnostics on stderr, no traceback, and OUT exactly
    as it was (same directory, same files, same bytes), no temporary directory left."""
    before = snapshot(previous_output)
    inode = previous_output.stat().st_ino

    run = compile_case(case, previous_output)

    assert run.exit_code == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout == ""
    assert COMPILE_SUMMARY.match(run.stderr.splitlines()[-1]), run.stderr
    assert snapshot(previous_output) == before
    assert previous_output.stat().st_ino == inode, "OUT was replaced by a copy"
    assert [path.name for path in previous_output.parent.iterdir()] == ["out"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_compile_prints_expected_diagnostics(case: Path, previous_output: Path) -> None:
    """Rule: the printed headlines and hints are exactly expected.txt, each headline
    shows its source line with a caret under the column, sorted by file and position."""
    run = compile_case(case, previous_output)
    actual = pinned_lines(run.stderr)
    expected = expected_lines(case)
    layout = layout_problems(case, run.stderr)

    bug = known_bug(case)
    if bug is not None:
        if actual == expected and not layout:
            pytest.fail(f"{case.name} is fixed: delete its {KNOWN_BUG_FILE}")
        pytest.xfail(bug)
    assert actual == expected, run.stderr
    assert not layout, "\n".join(layout) + "\n\n" + run.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_validate_prints_the_same_diagnostics(case: Path, previous_output: Path) -> None:
    """Rule: `extsvc validate` fails the same way as compile, whatever the file order."""
    compiled = pinned_lines(compile_case(case, previous_output).stderr)
    for files in (case_files(case), case_files(case)[::-1]):
        run = validate_case(case, files)
        assert run.exit_code == 1, run.stderr
        assert "Traceback" not in run.stdout + run.stderr
        assert VALIDATE_SUMMARY.match(run.stderr.splitlines()[-1]), run.stderr
        assert pinned_lines(run.stderr) == compiled


def test_harness_sees_a_real_compile(previous_output: Path) -> None:
    """Control: a valid input through the same harness exits 0 and replaces OUT, so the
    "untouched" checks above would notice a write."""
    valid = Path(__file__).parents[1] / "golden" / "hello-world" / "input"
    before = snapshot(previous_output)

    run = compile_case(valid, previous_output)

    assert run.exit_code == 0, run.stderr
    assert snapshot(previous_output) != before
    assert "bundles/hello-world/config.json" in snapshot(previous_output)
