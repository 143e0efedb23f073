"""`extsvc systemd-unit`: a unit systemd accepts, with what boot integration needs (issue 8)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format.quantities import parse_duration
from extsvc.executor.bootunit import STOP_MARGIN_SECONDS
from tests.conftest import cannot_run


def _unit(*args: str) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["systemd-unit", *args])
    assert result.exit_code == 0, result.output
    settings = {}
    for line in result.output.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings[key] = value
    return settings


def test_the_unit_is_notify_with_reload_and_a_graceful_stop(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"levels": [["ext-a"], ["ext-b"], ["ext-c"]]}))
    unit = _unit(
        str(out), "--state-dir", "/run/x", "--log-dir", "/var/log/x", "--stop-timeout", "20s"
    )
    assert unit["Type"] == "notify"
    assert unit["KillMode"] == "mixed"
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # One grace per dependency level (each stops after those that depend on it), plus margin.
    assert unit["TimeoutStopSec"] == str(3 * 20 + STOP_MARGIN_SECONDS)
    assert unit["ExecStart"].endswith(
        f"run {out} --state-dir /run/x --log-dir /var/log/x --stop-timeout 20s"
    )
    assert int(unit["WatchdogSec"]) > 0


def test_the_units_stop_timeout_reads_back_exactly(tmp_path: Path) -> None:
    """`run` must be able to parse what the unit passes it (`{x:g}` wrote 3.6e+14s)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"levels": [["ext-a"]]}))
    for given, written in [
        ("20s", "20s"),
        ("1.5s", "1500ms"),
        ("99999999999h", "359999999996400s"),
    ]:
        unit = _unit(str(out), "--stop-timeout", given)
        assert unit["ExecStart"].endswith(f"--stop-timeout {written}")
        assert parse_duration(written) == parse_duration(given)


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        cannot_run("no systemd-analyze (apt-get install systemd)")
    result = CliRunner().invoke(cli, ["systemd-unit", str(tmp_path / "out")])
    unit = tmp_path / "extsvc.service"
    unit.write_text(result.output)
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
