"""Loading plan.json: schema, digests, consistency, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extsvc.compiler.format.plan import PlanError, load_plan
from extsvc.compiler.format.servicepolicy import RestartPolicy
from tests.executor.planfiles import write_plan


def test_loads_services_levels_and_specs(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {}, "b": {"services": ["ext-a"], "level": 1, "restart": "never"}})
    plan = load_plan(tmp_path, machine="x86_64")
    assert plan.levels == (("ext-a",), ("ext-b",))
    assert plan.services["ext-b"].restart is RestartPolicy.NEVER
    assert plan.services["ext-b"].depends.services == ("ext-a",)
    assert plan.services["ext-a"].spec["root"]["path"] == "/srv/a"
    assert plan.dependents_of("ext-a") == ["ext-b"]
    assert load_plan(tmp_path / "plan.json", machine="x86_64").services.keys() == {"ext-a", "ext-b"}


def test_missing_plan_says_to_compile_first(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"plan.json: no such file \(run `extsvc compile"):
        load_plan(tmp_path)


def test_a_changed_bundle_is_refused(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {}})
    config = tmp_path / "bundles" / "a" / "config.json"
    config.write_text(config.read_text().replace('"./hello"', '"./evil"'))
    with pytest.raises(PlanError, match="the bundle changed after compilation"):
        load_plan(tmp_path, machine="x86_64")


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {}})
    plan = json.loads((tmp_path / "plan.json").read_text())
    plan["services"]["ext-a"]["restart"] = "sometimes"
    del plan["services"]["ext-a"]["digest"]
    text = json.dumps(plan, indent=2)
    (tmp_path / "plan.json").write_text(text)
    with pytest.raises(PlanError) as raised:
        load_plan(tmp_path, machine="x86_64")
    message = str(raised.value)
    # Located like every input diagnostic: file:line:col of the offending value.
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"sometimes"' in row)
    col = text.splitlines()[line - 1].index('"sometimes"') + 1
    where = f"{tmp_path / 'plan.json'}:{line}:{col}"
    assert f"{where}: error: services.ext-a.restart: 'sometimes' is not one of" in message
    # ...with the source line and a caret under the value, as for a service file.
    assert '\n          "restart": "sometimes",\n                     ^' in message
    assert "services.ext-a: missing required field 'digest'" in message


def test_invalid_json_has_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text('{\n  "apiVersion": \n}')
    with pytest.raises(PlanError, match=r"plan.json:3:1: invalid plan JSON"):
        load_plan(tmp_path)


def test_dependency_outside_the_plan_is_refused(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {"services": ["ext-ghost"]}})
    with pytest.raises(PlanError, match="depends on ext-ghost, which is not in the plan"):
        load_plan(tmp_path, machine="x86_64")


def test_plan_for_another_architecture_is_refused(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {}})
    with pytest.raises(PlanError, match="compiled for amd64, this host is arm64"):
        load_plan(tmp_path, machine="aarch64")


def test_missing_bundle_is_one_line(tmp_path: Path) -> None:
    write_plan(tmp_path, {"a": {}})
    (tmp_path / "bundles" / "a" / "config.json").unlink()
    with pytest.raises(PlanError, match=r"ext-a: cannot read .*config\.json"):
        load_plan(tmp_path, machine="x86_64")
