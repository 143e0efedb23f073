"""Output is canonical and written atomically: an error leaves OUT exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from extsvc.compiler import emit
from extsvc.compiler.emit import OutputError, canonical_json, write_tree


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


def test_a_previous_output_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree({"plan.json": b"1\n", "bundles/old/config.json": b"{}\n"}, out)
    write_tree({"plan.json": b"2\n", "bundles/new/config.json": b"{}\n"}, out)
    assert snapshot(out) == {"plan.json": b"2\n", "bundles/new/config.json": b"{}\n"}
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
    write_tree({"plan.json": b"old\n"}, out)
    real_write = Path.write_bytes

    def failing_write(self: Path, data: bytes) -> int:
        if self.name == "config.json":
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OutputError, match="No space left on device"):
        write_tree({"plan.json": b"new\n", "bundles/x/config.json": b"{}\n"}, out)
    assert snapshot(out) == {"plan.json": b"old\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_written_files_are_world_readable(tmp_path: Path) -> None:
    write_tree({"bundles/x/config.json": b"{}\n"}, tmp_path / "out")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "bundles/x/config.json").stat().st_mode & 0o777 == 0o644


def test_the_plan_schema_rejects_a_broken_plan() -> None:
    missing = [e.missing_key for e in emit.plan_errors({"apiVersion": "extsvc/v1"})]
    assert missing == ["kind", "compiler", "arch", "rootfsBase", "levels", "services"]
