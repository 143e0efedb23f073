"""`extsvc plan OUT --simulate FACTS`: the executor's own supervisor on virtual time."""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.executor.service.outcome import RunOutcome
from extsvc.executor.service.restart import Decision, Restarts, Verdict
from extsvc.executor.simulate import boot as simulation_module
from extsvc.executor.simulate.facts import FactsError, load_facts
from extsvc.executor.supervise.supervisor import Supervisor
from tests.review.cases import cases, expected, simulate_case

CASES = cases("simulate")
HERE = Path(__file__).parent


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_simulation_matches_its_golden(case: Path) -> None:
    produced = simulate_case(case)
    assert expected(case, produced) == produced, "run `make golden` and review the diff"


def test_the_simulation_is_the_executors_own_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second implementation: the simulation runs the executor's Supervisor, and
    when the executor's restart decision changes, the simulated boot changes with it."""
    assert simulation_module.Supervisor is Supervisor
    case = HERE / "simulate" / "crash-loop-always"
    restarted = simulate_case(case)["expected.txt"].decode()
    decided: list[float] = []

    def never_again(restarts: Restarts, outcome: RunOutcome, now: float) -> Decision:
        decided.append(now)
        return Decision(Verdict.LAST_RUN)

    monkeypatch.setattr(Restarts, "after", never_again)
    once = simulate_case(case)["expected.txt"].decode()
    assert decided, "the simulation never asked the executor's restart policy"
    assert "restarting forever in" in restarted and "restarting forever in" not in once
    assert once.count("Started task ext-crasher") == 1 < restarted.count("Started task ext-crasher")


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
    with pytest.raises(FactsError) as raised:
        load_facts(facts)
    assert re.match(
        r".*facts.yaml:3:\d+: error: network.adresses: ", raised.value.diagnostics[0].render()
    )
    facts.write_text("paths:\n  /dev/zfs: soon\n")
    with pytest.raises(FactsError) as raised:
        load_facts(facts)
    assert re.match(
        r".*facts.yaml:2:13: error: paths./dev/zfs: ", raised.value.diagnostics[0].render()
    )


def _simulate_cli(tmp_path: Path, facts_text: str) -> subprocess.CompletedProcess[str]:
    """`extsvc plan OUT --simulate FACTS` on the chain case, in a process of its own
    (bounded: a simulation that never ends fails the test instead of hanging it)."""
    case = HERE / "simulate" / "chain"
    out = tmp_path / "out"
    if not out.exists():
        assert (
            CliRunner().invoke(cli, ["compile", str(case / "input"), "-o", str(out)]).exit_code == 0
        )
    facts = tmp_path / "facts.yaml"
    facts.write_text(facts_text)
    return subprocess.run(
        [sys.executable, "-m", "extsvc", "plan", str(out), "--simulate", str(facts)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_typo_in_a_facts_file_gets_a_caret_and_a_did_you_mean(tmp_path: Path) -> None:
    result = _simulate_cli(tmp_path, "until: 1m\nnetwrok:\n  addresses: 3s\n")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{tmp_path}/facts.yaml:2:1: error: netwrok: unknown field 'netwrok'\n"
        "    netwrok:\n"
        "    ^\n"
        "  hint: did you mean 'network'?\n"
        f"extsvc: error: {tmp_path}/facts.yaml: 1 problem: nothing simulated\n"
    )


def test_facts_about_a_service_the_plan_does_not_have_are_refused(tmp_path: Path) -> None:
    """They were silently ignored: the misspelt service ran 'until stopped'."""
    result = _simulate_cli(
        tmp_path, "services:\n  ext-ap:\n    runs:\n      - exit: 1\nconfigurations:\n  setpu: 1s\n"
    )

    assert result.returncode == 1
    assert f"{tmp_path}/facts.yaml:2:3: error: services.ext-ap: the plan has no service ext-ap" in (
        result.stderr
    )
    assert "  hint: did you mean 'ext-app'?" in result.stderr
    assert "facts.yaml:6:3: error: configurations.setpu: the plan has no service named 'setpu'" in (
        result.stderr
    )
    assert "  hint: did you mean 'setup'?" in result.stderr
    assert result.stderr.endswith("facts.yaml: 2 problems: nothing simulated\n")


@pytest.mark.parametrize("field", ["until", "restartInterval", "time"])
def test_a_duration_past_the_bound_is_a_located_error_not_an_endless_simulation(
    tmp_path: Path, field: str
) -> None:
    """`until: 5000h` spun at 100% CPU for ever: past 2**24 s the virtual clock's float
    no longer moved by asyncio's clock resolution, so a due timer never ran."""
    result = _simulate_cli(tmp_path, f"{field}: 5000h\n")

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"{tmp_path}/facts.yaml:1:{len(field) + 3}: error: {field}: '5000h' is more than "
        "168h (7 days), the most a duration may be\n"
    )


def test_the_longest_duration_simulates_in_bounded_time(tmp_path: Path) -> None:
    chain = (HERE / "simulate" / "chain" / "facts.yaml").read_text()
    result = _simulate_cli(tmp_path, chain.replace("until: 1m", "until: 168h"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("boot timeline (simulated, until 604800s)")


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


def test_a_crash_loop_simulates_with_nothing_on_stderr(tmp_path: Path) -> None:
    """A run's scripted exit still pending at the end of the simulation (ext-crasher
    starts again at 30s, its `until`) was a task destroyed with the loop: asyncio said
    so on stderr."""
    case = HERE / "simulate" / "crash-loop-always"
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["compile", str(case / "input"), "-o", str(out)]).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-m", "extsvc", "plan", str(out), "--simulate", str(case / "facts.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (case / "expected.txt").read_text()
    assert result.stderr == ""
