"""Load limits: hostile or odd input is refused with one diagnostic, fast, without a crash.

The inputs here are generated at test time (some are big, none is stored). Limits
(``compiler.load``): a file is at most 1 MiB; a document expands (aliases included) to
at most 100,000 nodes and nests at most 64 levels. Paths that are not readable files
become diagnostics at 1:1, never exceptions.

Hostile inputs that could hang or crash the interpreter run ``extsvc`` in a child
process with a timeout, so a failure is a failed test, not a stuck or killed run.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from extsvc.compiler.check import check_sources
from extsvc.compiler.format.load import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from extsvc.compiler.sources import SourceFile, collect_sources

VALID_SERVICE = b"name: hello\ncontainer:\n  entrypoint: ./hello\nrestart: always\n"
TOO_LARGE = "file is too large ({size} bytes; the limit is 1048576)"
TOO_MANY_NODES = (
    "document expands to more than 100000 nodes (YAML aliases nested too deep?); "
    "refusing to load it"
)
TOO_DEEP = "document is nested more than 64 levels deep"


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_FILE_BYTES, MAX_NODES, MAX_DEPTH) == (1024 * 1024, 100_000, 64)


def extsvc(cwd: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (``python -m extsvc``)."""
    return subprocess.run(
        [sys.executable, "-m", "extsvc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def headlines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line or ": warning: " in line]


def check(name: str, data: bytes) -> list[str]:
    """Headlines of every diagnostic for one in-memory file."""
    return [d.headline() for d in check_sources([SourceFile(name, data)]).diagnostics]


def padded_service(size: int) -> bytes:
    """A valid service file of exactly ``size`` bytes (comment lines as padding)."""
    padding = size - len(VALID_SERVICE)
    lines = [b"#" * 99 + b"\n"] * (padding // 100)
    rest = padding % 100
    if rest:
        lines.append(b"#" * (rest - 1) + b"\n")
    data = VALID_SERVICE + b"".join(lines)
    assert len(data) == size
    return data


# -- size -------------------------------------------------------------------------------


def test_file_of_exactly_one_mib_is_accepted(tmp_path: Path) -> None:
    """The limit is inclusive: 1,048,576 bytes is still a service file."""
    (tmp_path / "hello.yaml").write_bytes(padded_service(MAX_FILE_BYTES))

    run = extsvc(tmp_path, "validate", "hello.yaml")

    assert run.returncode == 0, run.stderr


def test_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    """One byte over the limit: refused at 1:1, before any YAML parsing."""
    (tmp_path / "big.yaml").write_bytes(padded_service(MAX_FILE_BYTES + 1))

    run = extsvc(tmp_path, "validate", "big.yaml")

    assert run.returncode == 1
    assert headlines(run.stderr) == ["big.yaml:1:1: error: " + TOO_LARGE.format(size=1048577)]
    assert "Traceback" not in run.stderr


def test_size_in_message_is_the_real_size(tmp_path: Path) -> None:
    size = 3 * MAX_FILE_BYTES
    (tmp_path / "big.yaml").write_bytes(padded_service(size))

    run = extsvc(tmp_path, "validate", "big.yaml")

    assert headlines(run.stderr) == ["big.yaml:1:1: error: " + TOO_LARGE.format(size=size)]


# -- alias bomb ---------------------------------------------------------------------------


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """'Billion laughs': each level is a list of ``width`` aliases of the one before, so
    the last one stands for width**levels (387,420,489) strings in a 700-byte file."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return ("\n".join(lines) + "\n").encode()


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    """The expansion is counted while converting and stops at 100,000 nodes (how fast:
    ``bench/compile_bench.py``; the timeout here only turns a hang into a failure)."""
    (tmp_path / "bomb.yaml").write_bytes(alias_bomb())

    try:
        run = extsvc(tmp_path, "validate", "bomb.yaml", timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("extsvc validate on an alias bomb hung")

    assert run.returncode == 1
    assert [line.split(": error: ")[1] for line in headlines(run.stderr)] == [TOO_MANY_NODES]
    assert headlines(run.stderr)[0].startswith("bomb.yaml:")


def test_alias_bomb_does_not_eat_memory() -> None:
    """Refusing the bomb allocates little: well under 200 MB at the peak (Python heap)."""
    tracemalloc.start()
    try:
        found = check("bomb.yaml", alias_bomb())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [line.split(": error: ")[1] for line in found] == [TOO_MANY_NODES]
    assert peak < 200 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


# -- nesting ------------------------------------------------------------------------------


def flow_sequences(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth + b"\n"


def flow_mappings(depth: int) -> bytes:
    return b"{a: " * depth + b"x" + b"}" * depth + b"\n"


def block_mappings(depth: int) -> bytes:
    return "".join("  " * level + "a:\n" for level in range(depth)).encode()


@pytest.mark.parametrize(
    ("shape", "position"),
    [(flow_sequences, "1:66"), (flow_mappings, "1:261"), (block_mappings, "66:131")],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_nesting_200_levels_is_refused(shape: Callable[[int], bytes], position: str) -> None:
    """200 levels: one diagnostic at the first node deeper than 64 levels, no RecursionError."""
    assert check("deep.yaml", shape(200)) == [f"deep.yaml:{position}: error: {TOO_DEEP}"]


def test_nesting_limit_is_64_levels_below_the_top() -> None:
    """65 nested lists (the top one and 64 below it) load; 66 do not."""
    assert not any(TOO_DEEP in line for line in check("deep.yaml", flow_sequences(65)))
    assert check("deep.yaml", flow_sequences(66)) == [f"deep.yaml:1:66: error: {TOO_DEEP}"]


def test_nesting_100000_levels_is_refused_without_crashing(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_bytes(flow_sequences(100_000))

    run = extsvc(tmp_path, "validate", "deep.yaml")

    assert run.returncode == 1, f"exit status {run.returncode}"
    assert headlines(run.stderr) == [f"deep.yaml:1:66: error: {TOO_DEEP}"]


# -- paths that are not service files -----------------------------------------------------


def test_directory_named_like_a_service_file_is_read_as_a_directory(tmp_path: Path) -> None:
    """A path on the command line that is a directory is a source directory, whatever its
    name. An empty one is a warning; with nothing else to read, the run fails (exit 1)
    rather than compiling an empty set over a previous output."""
    (tmp_path / "x.yaml").mkdir()

    files, problems = collect_sources([str(tmp_path / "x.yaml")])
    run = extsvc(tmp_path, "validate", "x.yaml")

    assert files == []
    assert [p.message for p in problems] == ["no *.yaml files in this directory"]
    assert run.returncode == 1
    assert headlines(run.stderr) == ["x.yaml:1:1: warning: no *.yaml files in this directory"]
    assert run.stderr.splitlines()[-1] == "extsvc: no service files found; nothing done"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    run = extsvc(tmp_path, "validate", "missing.yaml")

    assert run.returncode == 1
    assert headlines(run.stderr) == ["missing.yaml:1:1: error: no such file or directory"]
    assert "Traceback" not in run.stderr


def test_missing_path_leaves_previous_output_alone(tmp_path: Path) -> None:
    """A valid file plus a missing one: nothing is compiled, OUT keeps its bytes."""
    (tmp_path / "hello.yaml").write_bytes(VALID_SERVICE)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_bytes(b'{"sentinel": true}\n')

    run = extsvc(tmp_path, "compile", "hello.yaml", "missing.yaml", "-o", "out", "--arch", "amd64")

    assert run.returncode == 1
    assert headlines(run.stderr) == ["missing.yaml:1:1: error: no such file or directory"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.yaml", "out"]
    assert [p.name for p in out.iterdir()] == ["plan.json"]
    assert (out / "plan.json").read_bytes() == b'{"sentinel": true}\n'


def test_directory_without_yaml_files_is_a_warning(tmp_path: Path) -> None:
    """Talos loads *.yaml only: .yml and other files in a source directory are not read."""
    services = tmp_path / "services"
    services.mkdir()
    (services / "hello.yml").write_bytes(VALID_SERVICE)
    (services / "README").write_text("not a service\n")

    files, problems = collect_sources([str(services)])
    run = extsvc(tmp_path, "validate", "services")

    skipped = "skipped hello.yml: Talos loads *.yaml only (rename to .yaml)"
    assert files == []
    assert [(p.severity.value, p.message) for p in problems] == [
        ("warning", f"no *.yaml files in this directory; {skipped}")
    ]
    assert run.returncode == 1
    assert headlines(run.stderr) == [
        f"services:1:1: warning: no *.yaml files in this directory; {skipped}"
    ]


def test_compile_says_which_yml_files_it_skipped_beside_yaml_ones(tmp_path: Path) -> None:
    """The .yml files are named (Talos would not run them either); the .yaml ones compile."""
    services = tmp_path / "services"
    services.mkdir()
    (services / "hello.yaml").write_bytes(VALID_SERVICE)
    (services / "web.yml").write_bytes(VALID_SERVICE.replace(b"hello", b"web"))
    (services / "db.YAML").write_bytes(VALID_SERVICE.replace(b"hello", b"db"))

    run = extsvc(tmp_path, "compile", "services", "-o", "out", "--arch", "amd64")

    assert run.returncode == 0, run.stderr
    assert headlines(run.stderr) == [
        "services:1:1: warning: skipped db.YAML, web.yml: Talos loads *.yaml only (rename to .yaml)"
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "bundles").iterdir()) == ["hello"]
