"""Every command run without the rights it needs says so in one line, with exit 3.

Run as an unprivileged user (root passes every permission check): `nobody`,
through setpriv, on files root made private, as an operator's would be (compile
writes OUT 0700/0600). Never a traceback, never click's "Path ... is not readable"
for one command and a different sentence for the next.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    """A directory nobody may enter (pytest's tmp_path is root's 0700) holding:
    ``private/``: root's compiled OUT, sources, facts, logs, all 0700/0600;
    ``mine/``: an OUT compiled by nobody itself (readable to it)."""
    top = Path(tempfile.mkdtemp(prefix="extsvc-permissions-"))
    top.chmod(0o755)
    try:
        private = top / "private"
        private.mkdir(mode=0o755)
        compiled = subprocess.run(
            [sys.executable, "-m", "extsvc", "compile", str(EXAMPLES), "-o", str(private / "out")],
            capture_output=True,
            text=True,
        )
        assert compiled.returncode == 0, compiled.stderr
        sources = private / "src"
        shutil.copytree(EXAMPLES, sources, ignore=shutil.ignore_patterns("*.py", "review"))
        sources.chmod(0o755)  # the directory can be listed; its files are root's
        for file in sources.glob("*.yaml"):
            file.chmod(0o600)
        facts = private / "facts.yaml"
        shutil.copy(EXAMPLES / "review" / "facts.yaml", facts)
        facts.chmod(0o600)
        logs = private / "logs"
        logs.mkdir(mode=0o700)
        (logs / "ext-hello-world.log").write_text("hello\n")
        mine = top / "mine"
        mine.mkdir()
        mine.chmod(0o777)  # mkdir's mode passes through the umask
        as_nobody = subprocess.run(
            [*NOBODY, sys.executable, "-m", "extsvc", "compile", str(EXAMPLES), "-o",
             str(mine / "out")],
            capture_output=True, text=True,
        )  # fmt: skip
        assert as_nobody.returncode == 0, as_nobody.stderr
        yield top
    finally:
        shutil.rmtree(top)


# Every command, each given something root keeps to itself.
COMMANDS = {
    "compile (sources)": "compile {p}/src -o {top}/mine/out2",
    "compile (output)": "compile {examples} -o {p}/out/nested",
    "compile (--service-config)": "compile {examples} --service-config {p}/src -o {top}/mine/o",
    "validate": "validate {p}/src",
    "validate --with": "validate {examples} --with {p}/src",
    "validate --env-file": "validate --env-file {p}/facts.yaml",
    "validate --host-services": "validate {examples} --host-services {p}/facts.yaml",
    "diff": "diff {p}/out {top}/mine/out",
    "explain": "explain {p}/out hello-world",
    "explain (sources)": "explain {p}/src hello-world",
    "plan": "plan {p}/out",
    "plan --simulate": "plan {top}/mine/out --simulate {p}/facts.yaml",
    "logs": "logs --log-dir {p}/logs",
    "logs SERVICE": "logs hello-world --log-dir {p}/logs",
    "systemd-unit": "systemd-unit {p}/out",
    "service": "service",
    "service ID restart": "service hello-world restart",
    "reload": "reload",
    "metrics": "metrics",
    "extension list": "extension list --root {p}/out",
    "extension install": "extension install {examples} --root {p}/out",
    "extension remove": "extension remove hello --root {p}/out",
    "run": "run {p}/out --state-dir {top}/mine/state",
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_command_without_the_rights_it_needs_says_so_in_one_line(
    world: Path, command: str
) -> None:
    words = command.format(top=world, p=world / "private", examples=EXAMPLES).split()
    result = subprocess.run(
        [*NOBODY, sys.executable, "-m", "extsvc", *words],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"extsvc: error: extsvc {words[0]}"), line
    assert "permission denied" in line or "root" in line, line
    assert not list((world / "mine").glob("o*/nested")) and not (world / "mine/out2").exists()


def test_what_needs_no_rights_works_as_anyone(world: Path) -> None:
    for words in (["schema", "--kind", "facts"], ["plan", str(world / "mine" / "out")]):
        result = subprocess.run(
            [*NOBODY, sys.executable, "-m", "extsvc", *words], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
    assert os.geteuid() == 0  # the fixture's private files were root's
