"""The installed distribution: one top-level import name, `extsvc`, with its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.wheel import PACKAGE_FOLDERS, REPO, build_wheel


def test_wheel_adds_only_the_extsvc_import_name(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"extsvc", "extsvc-0.1.0.dist-info"}
    assert "extsvc/compiler/format/schemas/plan.schema.json" in names
    assert "extsvc/compiler/seccomp/default-amd64.json" in names
    assert "extsvc/oci_schemas/config-schema.json" in names
    assert "extsvc/extension/install.py" in names


def test_wheel_holds_every_module_of_the_source_tree(tmp_path: Path) -> None:
    """pyproject.toml lists the packages one by one: a subpackage left out of that list
    would import from the checkout and be missing from every installed copy."""
    names = zipfile.ZipFile(build_wheel(tmp_path / "dist")).namelist()
    shipped = {name for name in names if name.endswith(".py")}
    expected = {
        f"extsvc/{folder}/{path.relative_to(REPO / folder).as_posix()}"
        for folder in PACKAGE_FOLDERS
        for path in (REPO / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected - shipped == set()
    assert {n for n in shipped if n.split("/")[1] in PACKAGE_FOLDERS} - expected == set()


def test_installed_tree_imports_as_extsvc_only(tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(build_wheel(tmp_path / "dist")).extractall(site)

    # Run away from the source tree, with the unpacked wheel first on the path.
    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    assert "No module named 'compiler'" in python("import compiler").stderr
    assert "No module named 'executor'" in python("import executor").stderr
    shipped = python(
        "import extsvc.compiler.pipeline as p, extsvc.executor.daemon.main as d; "
        "print(p.__file__); print(d.__file__); "
        "from extsvc.compiler.render import oci_config_errors; print(list(oci_config_errors({})))"
    )
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.startswith(str(site / "extsvc" / "compiler" / "pipeline.py"))
    assert "missing required field 'ociVersion'" in shipped.stdout


def test_the_version_is_written_once(tmp_path: Path) -> None:
    """extsvc/__init__.py holds it; the wheel's metadata, `extsvc --version` and the
    compiler's stamp in plan.json all read it (it was written in three places)."""
    import json
    import re

    from click.testing import CliRunner

    from extsvc import __version__
    from extsvc.cli import cli

    wheel = build_wheel(tmp_path / "dist")
    assert wheel.name.startswith(f"extsvc-{__version__}-")
    assert CliRunner().invoke(cli, ["--version"]).output == f"extsvc, version {__version__}\n"
    hello = REPO / "tests" / "golden" / "hello-world" / "input"
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["compile", str(hello), "-o", str(out)]).exit_code == 0
    assert json.loads((out / "plan.json").read_text())["compiler"]["version"] == __version__
    written = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "pyproject.toml", *REPO.glob("[ce]*/**/*.py"))
        if re.search(r"""^\s*(__version__|version)\s*=\s*["']""", path.read_text(), re.M)
    ]
    assert written == ["extsvc/__init__.py"]


def test_exit_codes_are_defined_once() -> None:
    """compiler/format/exitcodes.py names them; the executor's errors, `run`'s parser and
    `diff` import them (errors.py, cli_run.py and cli_review.py each wrote their own)."""
    import re

    from extsvc.compiler.format import exitcodes
    from extsvc.executor import errors

    # An exit code is 0 to 3 (DESIGN §7); EXIT_MARGIN = 15 (seconds) is none.
    defined = re.compile(
        r"^\s*(\w*exit\w*|\w*(?:USAGE|TROUBLE)\w*)\s*=\s*[0-3]\s*(#.*)?$", re.I | re.M
    )
    elsewhere = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for path in (
            *REPO.glob("compiler/**/*.py"),
            *REPO.glob("executor/*.py"),
            *REPO.glob("extension/*.py"),
            REPO / "extsvc" / "cli.py",
        )
        if path.name != "exitcodes.py"
        for match in defined.finditer(path.read_text())
    ]
    assert elsewhere == []
    assert errors.InvalidInputError.exit_code == exitcodes.EXIT_INVALID_INPUT
    assert errors.EnvironmentMissingError.exit_code == exitcodes.EXIT_ENVIRONMENT
