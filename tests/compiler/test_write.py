"""Writing OUT: atomic, crash-safe, private, and never through a symlink (compiler.write)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extsvc.compiler import write
from extsvc.compiler.canonical import canonical_json
from extsvc.compiler.render import plan_errors
from extsvc.compiler.write import OutputError, write_tree

OLD = {"plan.json": b"old\n", "bundles/old/config.json": b"{}\n"}
NEW = {"plan.json": b"new\n", "bundles/new/config.json": b'{"env": "SECRET=1"}\n'}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_canonical_json_sorts_keys_indents_and_ends_with_a_newline() -> None:
    assert (
        canonical_json({"b": 1, "a": ["é"]}) == '{\n  "a": [\n    "é"\n  ],\n  "b": 1\n}\n'.encode()
    )


def test_the_plan_schema_rejects_a_broken_plan() -> None:
    missing = [e.missing_key for e in plan_errors({"apiVersion": "extsvc/v1"})]
    assert missing == ["kind", "compiler", "arch", "rootfsBase", "levels", "services"]


def test_a_previous_output_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    write_tree(NEW, out)
    assert snapshot(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind


def test_a_directory_that_is_not_our_output_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not an extsvc output directory"):
        write_tree({"plan.json": b"{}\n"}, tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_a_failed_write_leaves_out_untouched_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    real_write = write._write_file

    def failing_write(directory: int, name: str, data: bytes) -> None:
        if name == "config.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(directory, name, data)

    monkeypatch.setattr(write, "_write_file", failing_write)
    with pytest.raises(OutputError, match="No space left on device"):
        write_tree(NEW, out)
    assert snapshot(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bundles_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """Specs carry environment values: 0700 directories, 0600 files, OUT included."""
    out = tmp_path / "out"
    write_tree(NEW, out)
    modes = {
        p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in [out, *sorted(out.rglob("*"))]
    }
    assert modes == {
        "out": 0o700,
        "out/bundles": 0o700,
        "out/bundles/new": 0o700,
        "out/bundles/new/config.json": 0o600,
        "out/plan.json": 0o600,
    }


# --- The swap --------------------------------------------------------------------------


def test_the_swap_is_one_rename_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    inode = out.stat().st_ino
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def spy(src: str, dst: str, **kwargs: int) -> None:
        renames.append((src, dst))
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", spy)
    write_tree(NEW, out)
    assert renames == []  # renameat2(RENAME_EXCHANGE), no rename(2) at all
    assert snapshot(out) == NEW
    assert out.stat().st_ino != inode


def test_a_failed_exchange_leaves_out_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)

    def broken(dir_fd: int, first: str, second: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(write, "exchange", broken)
    with pytest.raises(OutputError, match="Input/output error"):
        write_tree(NEW, out)
    assert snapshot(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def refuse_exchange(dir_fd: int, first: str, second: str) -> None:
    raise OSError(errno.EINVAL, "Invalid argument")  # e.g. a filesystem without it


def test_without_rename_exchange_two_renames_do_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    monkeypatch.setattr(write, "exchange", refuse_exchange)
    write_tree(NEW, out)
    assert snapshot(out) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_between_the_two_renames_puts_out_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    monkeypatch.setattr(write, "exchange", refuse_exchange)
    real_rename = os.rename
    calls = []

    def second_rename_fails(src: str, dst: str, **kwargs: int) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # OUT is already moved aside, the new tree not yet in place
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "rename", second_rename_fails)
    with pytest.raises(OutputError, match="Input/output error"):
        write_tree(NEW, out)
    assert snapshot(out) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temporary_trees_are_removed_by_the_next_compile(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(OLD, out)
    for stale in (".out.new-abc123", ".out.old-def456", ".out.old-0/out"):
        (tmp_path / stale / "bundles").mkdir(parents=True)
        (tmp_path / stale / "bundles" / "config.json").write_text("{}")
    (tmp_path / ".other.new-x").mkdir()  # another OUT's: not ours to remove
    write_tree(NEW, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.new-x", "out"]


# --- Symlinks --------------------------------------------------------------------------


def test_a_symlink_planted_in_out_cannot_redirect_a_write(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "plan.json").write_bytes(b"victim\n")
    write_tree(OLD, out)
    (out / "plan.json").unlink()
    (out / "plan.json").symlink_to(outside / "plan.json")
    (out / "bundles" / "new").symlink_to(outside, target_is_directory=True)

    write_tree(NEW, out)

    assert snapshot(outside) == {"plan.json": b"victim\n"}
    assert snapshot(out) == NEW
    assert not any(p.is_symlink() for p in out.rglob("*"))


def test_files_are_never_created_through_a_symlink(tmp_path: Path) -> None:
    """Inside the staging tree too: an existing name is never opened, let alone followed."""
    target = tmp_path / "target"
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "plan.json").symlink_to(target)
    fd = os.open(tmp_path / "staging", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            write._write_file(fd, "plan.json", b"x")
    finally:
        os.close(fd)
    assert not target.exists()


# --- A real compile, SIGKILLed while it writes -------------------------------------------

SERVICES = 1000


def test_sigkill_mid_write_leaves_out_whole_and_the_next_compile_cleans_up(
    tmp_path: Path,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(SERVICES):
        (source / f"s{i:04}.yaml").write_text(
            f"name: s{i:04}\ncontainer:\n  entrypoint: /x\n"
            f"  environment: [INDEX={i}]\nrestart: always\n"
        )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "extsvc", "compile", str(source), "-o", str(out)]
    command += ["--arch", "amd64"]
    subprocess.run(command, check=True, capture_output=True)
    before = snapshot(out)
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        # Kill as soon as the staging tree exists, i.e. while the files are written.
        while process.poll() is None and not any(tmp_path.glob(".out.new-*/bundles")):
            time.sleep(0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        assert snapshot(out) == before  # same inputs, so the same bytes: whole either way
    assert kills >= 1, "every compile finished before it could be killed"
    assert any(p.name.startswith(".out.new-") for p in tmp_path.iterdir())

    subprocess.run(command, check=True, capture_output=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    assert snapshot(out) == before
