"""The rules a reader of the source relies on, checked so that they hold (README, "How
it is built"): modules stay small enough to read at one sitting, and a test module is
read on its own, its shared helpers in modules that are not tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.docs import table_rows

ROOT = Path(__file__).parents[1]
PACKAGES = ("compiler", "executor", "extension", "extsvc")
MAX_LINES = 400
# The JSON Schema validator is one algorithm over one schema language: cut in two it
# would be harder to read, not easier.
EXEMPT = {Path("compiler/format/schemacheck.py")}


def test_no_module_but_the_schema_validator_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.relative_to(ROOT) not in EXEMPT
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, "split them by what they are about (docs/executor.md, Layout)"
    assert all((ROOT / path).is_file() for path in EXEMPT)


def test_a_test_module_imports_no_other_test_module_nor_a_conftest() -> None:
    borrowed = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                    borrowed.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert borrowed == [], "move what is shared into a helper module (tests/support, fakes)"


def test_the_layout_table_names_every_module_of_the_executor() -> None:
    """docs/executor.md's "Layout" is where a newcomer looks a module up: each module of
    each package is named (in backticks) on its package's row."""
    rows = {
        package: " ".join(cells)
        for cells in table_rows(ROOT / "docs" / "executor.md", "Layout")
        for package in re.findall(r"`(\w+)/`", cells[1])
    }
    unnamed = []
    for package in sorted(p for p in (ROOT / "executor").iterdir() if (p / "__init__.py").exists()):
        row = rows.get(package.name, "")
        for module in sorted(package.glob("*.py")):
            if module.stem != "__init__" and f"`{module.stem}`" not in row:
                unnamed.append(f"{package.name}/{module.name}")
    assert rows, "the Layout table was not found"
    assert unnamed == []
