"""ExtensionServiceConfig at compile time, environment files, and the validate modes
around them (mixed input kinds, --with, --env-file, --format github)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format.envfile import parse_env_file
from extsvc.compiler.format.extconfig import ConfigFile, ServiceConfig, configure_spec
from extsvc.compiler.format.sourcemap import SourceMap

SERVICE = "name: {name}\ncontainer:\n  entrypoint: ./x\nrestart: never\n"
CONFIG = (
    "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: {name}\n"
    "configFiles:\n  - content: 'secret'\n    mountPath: /etc/{name}/a.conf\n"
    "environment: [B=2]\n"
)


def run(cwd: Path, *args: str) -> tuple[int, str, str]:
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("A=1\n", ["A=1"]),
        ("export A=1\n", ["A=1"]),
        ("  A = spaced out  \n", ["A=spaced out"]),
        ("A=x # comment\n", ["A=x"]),
        ("A=x#not a comment in Go either\n", ["A=x"]),
        ("A='literal \\n $HOME'\n", ["A=literal \\n $HOME"]),
        ('A="tab\\there \\"q\\" \\\\ \\u00e9 \\ud83d\\udd25"\n', ['A=tab\there "q" \\ é 🔥']),
        ("A=un 'single' \"double\" # end\n", ["A=un single double"]),
        ("A='keeps trailing '  # c\n", ["A=keeps trailing "]),
        ("A=\n", ["A="]),
        ("export=1\n", ["export=1"]),
        ("a.b/c_d=1\n", ["a.b/c_d=1"]),
        ("# only a comment\n\n   \n", []),
        ("A=1\r\nB=2\r\n", ["A=1", "B=2"]),
        # A key set twice keeps its first place and its last value (go-envparse Pairs.Set).
        ("A=1\nB=2\nA=3\n", ["A=3", "B=2"]),
    ],
)
def test_environment_files_parse_as_go_envparse_does(text: str, entries: list[str]) -> None:
    found, problems = parse_env_file("f.env", text.encode())
    assert found == entries
    assert [p for p in problems if p.is_error] == []


def test_configure_spec_orders_environment_and_appends_mounts() -> None:
    spec = {"process": {"env": ["OWN=1"]}, "mounts": [{"destination": "/own"}]}
    config = ServiceConfig(
        "hello",
        (ConfigFile("x", "/etc/a.conf"), ConfigFile("y", "/etc/b/c.conf")),
        ("DOC=1", "DROPPED"),
        SourceMap("c.yaml", ()),
    )
    result = configure_spec(spec, env_file=["FILE=1"], config=config)
    assert result["process"]["env"] == ["FILE=1", "OWN=1", "DOC=1"]
    assert result["mounts"] == [
        {"destination": "/own"},
        {"destination": "/etc/a.conf", "options": ["ro", "bind"], "source": "etc-a.conf",
         "type": "bind"},
        {"destination": "/etc/b/c.conf", "options": ["ro", "bind"], "source": "etc-b-c.conf",
         "type": "bind"},
    ]  # fmt: skip
    assert spec == {"process": {"env": ["OWN=1"]}, "mounts": [{"destination": "/own"}]}
    assert "env" not in configure_spec({"process": {"args": ["x"]}})["process"]


def test_compile_bakes_configs_into_relocatable_private_files(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.yaml").write_text(SERVICE.format(name="a"))
    (tmp_path / "a-config.yaml").write_text(CONFIG.format(name="a"))
    code, _, err = run(
        tmp_path, "compile", "src", "--service-config", "a-config.yaml", "-o", "out",
        "--arch", "amd64",
    )  # fmt: skip
    assert code == 0, err
    baked = tmp_path / "out" / "bundles" / "a" / "config" / "etc-a-a.conf"
    assert baked.read_text() == "secret"
    assert baked.stat().st_mode & 0o777 == 0o600
    config = json.loads((tmp_path / "out" / "bundles" / "a" / "config.json").read_text())
    assert config["mounts"][-1]["source"] == "config/etc-a-a.conf"
    assert config["process"]["env"] == ["B=2"]
    assert "secret" not in err


def test_validate_takes_any_mix_of_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SERVICE.format(name="a"))
    (tmp_path / "config.yaml").write_text(CONFIG.format(name="b"))
    (tmp_path / "hosts.yaml").write_text("cri:\n  pth: /run/x\n")
    code, _, err = run(tmp_path, "validate", "a.yaml", "config.yaml", "hosts.yaml")
    assert code == 1
    assert "hosts.yaml:2:3: error: cri.pth: unknown field 'pth'" in err
    assert "hint: did you mean 'path'?" in err
    assert "config.yaml:3:7: warning: name: no service named 'b' in the set" in err
    assert err.endswith("1 of 3 files invalid: 1 error, 1 warning\n")  # a warning is no failure


def test_validate_with_reports_only_the_named_files(tmp_path: Path) -> None:
    """pre-commit: the changed file is checked in the context of the whole set."""
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "a.yaml").write_text(SERVICE.format(name="a"))
    (tmp_path / "services" / "broken.yaml").write_text("name: [\n")
    (tmp_path / "config.yaml").write_text(CONFIG.format(name="a"))
    code, _, err = run(tmp_path, "validate", "config.yaml", "--with", "services")
    assert (code, err) == (0, "1 file ok: 0 errors, 0 warnings\n")
    (tmp_path / "config.yaml").write_text(CONFIG.format(name="c"))
    code, _, err = run(tmp_path, "validate", "config.yaml", "--with", "services")
    assert "warning: name: no service named 'c' in the set" in err


def test_validate_with_the_folder_that_holds_the_named_file(tmp_path: Path) -> None:
    """pre-commit's usual call: the changed file is in the --with folder; it is one
    service, not two with the same name."""
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "a.yaml").write_text(SERVICE.format(name="a"))
    code, _, err = run(tmp_path, "validate", "services/a.yaml", "--with", "services")
    assert (code, err) == (0, "1 file ok: 0 errors, 0 warnings\n")


def test_validate_env_file_alone(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("GOOD=1\nbad-key=2\n")
    code, _, err = run(tmp_path, "validate", "--env-file", "app.env")
    assert code == 1
    assert err.splitlines()[0] == (
        "app.env:2:4: error: a key holds letters, digits, '_', '.' and '/', found '-'"
    )
    assert run(tmp_path, "validate")[0] == 2


def test_format_github_annotates_a_missing_file_too(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "validate", "--format", "github", "missing.yaml")
    assert code == 1
    assert out == (
        "::error file=missing.yaml,line=1,col=1,title=extsvc::no such file or directory\n"
    )
    assert err == "extsvc: no service files found; nothing done\n"


def test_format_github_prints_workflow_annotations(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: a\ncontainer:\n  entrypoint: ./x\n  writableRootfs: true\nrestart: Always\n"
    )
    code, out, _ = run(tmp_path, "validate", "--format", "github", "a.yaml")
    assert code == 1
    assert out.splitlines() == [
        "::error file=a.yaml,line=4,col=3,title=extsvc::container.writableRootfs: unknown "
        "field 'writableRootfs'%0Ahint: 'writeableRootfs' belongs in "
        "container.security.writeableRootfs",
        "::warning file=a.yaml,line=5,col=10,title=extsvc::restart: Talos reads this as "
        "'always'%0Ahint: write 'always'",
    ]


def _imported_by(*args: str) -> set[str]:
    """The modules ``extsvc ARGS...`` imports (in a fresh interpreter)."""
    code = (
        "import sys\nfrom extsvc.cli import main\n"
        f"try:\n    main({list(args)!r})\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sys.modules))\n"
    )
    root = Path(__file__).parents[2]
    ran = subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True)
    return set(ran.stdout.decode().split())


def test_validate_of_service_files_does_not_import_lark() -> None:
    """lark is imported for environment files only, the configuration documents' module
    for documents only, the review tools never: validate keeps its start-up budget."""
    imported = _imported_by("validate", "tests/golden/hello-world/input")
    assert "lark" not in imported, "lark was imported"
    unneeded = {
        "jsonschema",
        "extsvc.compiler.format.extconfig",
        "extsvc.compiler.review.diff",
        "extsvc.compiler.review.explain",
    }
    assert imported & unneeded == set()


def test_compile_of_service_files_imports_no_review_hazard_or_document_module(
    tmp_path: Path,
) -> None:
    out = str(tmp_path / "out")
    imported = _imported_by("compile", "tests/golden/hello-world/input", "-o", out)
    assert (tmp_path / "out" / "plan.json").is_file()
    unneeded = {
        "lark",
        "jsonschema",
        "extsvc.compiler.format.extconfig",
        "extsvc.compiler.review.hazards",
        "extsvc.compiler.review.diff",
        "extsvc.compiler.review.explain",
    }
    assert imported & unneeded == set()


def test_pre_commit_hooks_run_extsvc_validate(tmp_path: Path) -> None:
    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    (tmp_path / "a.yaml").write_text(SERVICE.format(name="a"))
    for hook in hooks:
        program, *args = hook["entry"].split()
        assert program == "extsvc"
        # pre-commit appends the changed files to the entry.
        assert run(tmp_path, *args, "a.yaml")[0] == 0, hook["id"]
