"""`extsvc explain`: each field with the origin the compiler recorded while building it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from tests.golden import case_dirs, compile_case
from tests.review.cases import cases, expected, explain_case

CASES = cases("explain")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_explain_matches_its_golden(case: Path) -> None:
    produced = explain_case(case)
    assert expected(case, produced) == produced, "run `make golden` and review the diff"


@pytest.mark.parametrize("case", case_dirs(), ids=lambda case: case.name)
def test_every_field_of_every_golden_has_a_recorded_origin(case: Path) -> None:
    from extsvc.compiler.review.explain import explain_config

    result = compile_case(case)
    for name, data in result.files.items():
        if not name.endswith("/config.json"):
            continue
        origins = json.loads(result.files[name.replace("config.json", "origins.json")])
        rows = explain_config(json.loads(data), origins)
        assert [row.field for row in rows if row.origin is None] == [], name


def test_origins_name_the_exact_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = Path(__file__).parent / "explain" / "hello-world" / "input"
    runner = CliRunner()
    assert runner.invoke(cli, ["compile", str(source), "-o", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["explain", str(out), "hello-world"])
    assert result.exit_code == 0, result.output
    assert "process.args" in result.stdout and "hello-world.yaml:3:15" in result.stdout
    config = out / "bundles" / "hello-world" / "config.json"
    config.write_text(config.read_text().replace("./hello", "./other"))
    result = runner.invoke(cli, ["explain", str(out), "ext-hello-world"])
    assert result.exit_code == 2
    assert "describes another config.json" in result.stderr


def test_explain_json_masks_environment_values() -> None:
    source = Path(__file__).parent / "explain" / "every-field" / "input"
    result = CliRunner().invoke(cli, ["explain", str(source), "ext-iscsid", "--output", "json"])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.stdout
    document = json.loads(result.stdout)
    env = [f["value"] for f in document["fields"] if f["field"].startswith("process.env")]
    assert env == ["ISCSI_TOKEN=***", "PATH=***"]
    shown = CliRunner().invoke(cli, ["explain", str(source), "iscsid", "--show-values"])
    assert "ISCSI_TOKEN=s3cret" in shown.stdout


def test_unknown_service_lists_the_known_ones() -> None:
    source = Path(__file__).parent / "explain" / "hello-world" / "input"
    result = CliRunner().invoke(cli, ["explain", str(source), "nope"])
    assert result.exit_code == 2
    assert "no service ext-nope (services: ext-hello-world)" in result.stderr


def test_compile_annotate_names_each_source_and_its_digest(tmp_path: Path) -> None:
    import hashlib

    source = Path(__file__).parent / "explain" / "hello-world" / "input"
    plain, annotated = tmp_path / "plain", tmp_path / "annotated"
    runner = CliRunner()
    assert runner.invoke(cli, ["compile", str(source), "-o", str(plain)]).exit_code == 0
    assert (
        runner.invoke(cli, ["compile", str(source), "-o", str(annotated), "--annotate"]).exit_code
        == 0
    )
    config = json.loads((annotated / "bundles" / "hello-world" / "config.json").read_text())
    digest = hashlib.sha256((source / "hello-world.yaml").read_bytes()).hexdigest()
    assert config.pop("annotations") == {
        "io.extsvc.source": "hello-world.yaml",
        "io.extsvc.source.digest": f"sha256:{digest}",
    }
    assert config == json.loads((plain / "bundles" / "hello-world" / "config.json").read_text())
    explained = runner.invoke(cli, ["explain", str(annotated), "hello-world"]).stdout
    assert "annotations.io.extsvc.source  " in explained
