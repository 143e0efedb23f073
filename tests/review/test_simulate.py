"""`extsvc plan OUT --simulate FACTS`: the executor's own supervisor on virtual time."""

from __future__ import annotations

import json
import selectors
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.executor import simulate as simulation_module
from extsvc.executor.errors import InvalidInputError
from extsvc.executor.facts import load_facts
from tests.review.cases import cases, expected, simulate_case

CASES = cases("simulate")
HERE = Path(__file__).parent


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_simulation_matches_its_golden(case: Path) -> None:
    produced = simulate_case(case)
    assert expected(case, produced) == produced, "run `make golden` and review the diff"


def test_the_simulation_is_the_executors_own_policy() -> None:
    # No second implementation: the module drives executor.supervisor and executor.runner.
    source = Path(simulation_module.__file__).read_text()
    assert "from extsvc.executor.supervisor import Supervisor" in source
    assert "restarts_after" not in source and "RestartPolicy" not in source


def test_five_simulated_minutes_never_wait_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtual time: every poll of the real selector is a non-blocking one (timeout 0);
    how long a simulation takes is a figure for bench/review_bench.py, not a test."""
    timeouts: list[float | None] = []
    real_select = selectors.DefaultSelector.select

    def recording_select(self: selectors.BaseSelector, timeout: float | None = None) -> Any:
        timeouts.append(timeout)
        return real_select(self, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(selectors.DefaultSelector, "select", recording_select)
    simulate_case(HERE / "simulate" / "crash-loop-backoff")
    assert timeouts
    assert set(timeouts) == {0}


def test_each_restart_policy_has_a_crash_loop_golden() -> None:
    names = {case.name for case in CASES}
    assert {"crash-loop-always", "crash-loop-untilsuccess", "crash-loop-never"} <= names


def test_a_bad_facts_file_is_reported_with_its_position(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("until: 1m\nnetwork:\n  adresses: 2s\n")
    with pytest.raises(InvalidInputError, match=r"facts.yaml:3:\d+: network.adresses: "):
        load_facts(facts)
    facts.write_text("paths:\n  /dev/zfs: soon\n")
    with pytest.raises(InvalidInputError, match=r"facts.yaml:2:13: paths./dev/zfs: "):
        load_facts(facts)


def test_cli_simulates_a_compiled_plan(tmp_path: Path) -> None:
    case = HERE / "simulate" / "chain"
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["compile", str(case / "input"), "-o", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["plan", str(out), "--simulate", str(case / "facts.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stdout == (case / "expected.txt").read_text()
    as_json = runner.invoke(
        cli, ["plan", str(out), "--simulate", str(case / "facts.yaml"), "--output", "json"]
    )
    assert json.loads(as_json.stdout) == json.loads((case / "expected.json").read_text())
    plain = runner.invoke(cli, ["plan", str(out)])
    assert "level 2:\n  ext-app (restart always) waits for service" in plain.stdout


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "no such file" in result.stderr and "Traceback" not in result.output
