"""Every golden case compiles to exactly its expected files, in any input order."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from extsvc.compiler.canonical import canonical_json
from tests.golden import GOLDEN_ROOT, case_dirs, compile_case, expected_outputs, rendered_outputs

CASES = case_dirs()


def _diff(name: str, expected: bytes, actual: bytes) -> str:
    lines = difflib.unified_diff(
        expected.decode().splitlines(keepends=True),
        actual.decode().splitlines(keepends=True),
        fromfile=f"expected/{name}",
        tofile=f"actual/{name}",
    )
    return "".join(lines)


def test_every_folder_is_a_complete_case() -> None:
    """``case_dirs`` takes folders with an input/ folder; a misnamed one would be skipped
    silently, so every folder must have its inputs and its expected output."""
    for folder in sorted(path for path in GOLDEN_ROOT.iterdir() if path.is_dir()):
        assert folder in CASES, f"{folder.name} has no input/ folder"
        assert sorted((folder / "input").glob("*.yaml")), f"{folder.name}: no input/*.yaml"
        assert (folder / "expected" / "plan.json").is_file(), f"{folder.name}: no expected/"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_matches_expected(case: Path) -> None:
    actual = rendered_outputs(compile_case(case))
    expected = expected_outputs(case)
    assert sorted(actual) == sorted(expected), "files differ; run `make golden` and review the diff"
    mismatches = [
        _diff(name, expected[name], actual[name])
        for name in sorted(actual)
        if actual[name] != expected[name]
    ]
    assert not mismatches, "golden mismatch (run `make golden` if intended):\n" + "\n".join(
        mismatches
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_is_independent_of_input_order(case: Path) -> None:
    assert compile_case(case, reverse=True).files == compile_case(case).files


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_output_is_canonical(case: Path) -> None:
    """Re-serialising any JSON output changes nothing: the bytes are already canonical.
    (Baked config files, bundles/<name>/config/*, are the documents' contents verbatim.)"""
    for name, data in compile_case(case).files.items():
        if name.endswith(".json"):
            assert canonical_json(json.loads(data)) == data, name
