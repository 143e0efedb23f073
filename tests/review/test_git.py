"""`extsvc diff --git REV DIR` on a temporary repository: old side from git, no checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli

HERE = Path(__file__).parent
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    services = repo / "deploy" / "services"
    services.mkdir(parents=True)
    _git(repo, "init", "-q")
    shutil.copy(HERE / "diff" / "rootfs-writable" / "old" / "app.yaml", services / "app.yaml")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    shutil.copy(HERE / "diff" / "rootfs-writable" / "new" / "app.yaml", services / "app.yaml")
    return repo


def _state(repo: Path) -> tuple[str, str, list[str]]:
    return (
        _git(repo, "status", "--porcelain"),
        _git(repo, "rev-parse", "HEAD"),
        sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.parts),
    )


def test_git_revision_against_the_working_tree(repo: Path) -> None:
    before = _state(repo)
    services = repo / "deploy" / "services"
    result = CliRunner().invoke(cli, ["diff", "--git", "HEAD", str(services)])
    assert result.exit_code == 1, result.output
    expected = (HERE / "diff" / "rootfs-writable" / "expected.txt").read_text()
    assert result.stdout == expected
    assert _state(repo) == before  # no checkout, no stray files, same index


def test_git_from_inside_the_directory_and_json_labels(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "deploy" / "services")
    result = CliRunner().invoke(cli, ["diff", "--git", "HEAD", ".", "--output", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["old"], report["new"]) == ("HEAD:.", ".")
    assert [c["field"] for c in report["changes"]] == ["root.readonly"]


def test_git_unchanged_working_tree_exits_0(repo: Path) -> None:
    _git(repo, "commit", "-q", "-am", "v2")
    result = CliRunner().invoke(cli, ["diff", "--git", "HEAD", str(repo / "deploy" / "services")])
    assert (result.exit_code, result.stdout) == (0, "")


def test_git_unknown_revision_is_an_error_not_a_traceback(repo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["diff", "--git", "no-such-rev", str(repo / "deploy" / "services")]
    )
    assert result.exit_code == 2
    assert "git archive" in result.stderr and "Traceback" not in result.stderr


def test_git_needs_exactly_one_directory(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["diff", "--git", "HEAD", "a", "b"])
    assert result.exit_code == 2
