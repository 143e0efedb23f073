"""`extsvc systemd-unit`: a unit systemd accepts, with what boot integration needs.
tests/boot runs the unit under a real systemd."""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format.plan import load_plan
from extsvc.compiler.format.quantities import parse_duration
from extsvc.executor.cli import run
from extsvc.executor.cli.systemdunit import EXIT_MARGIN, Kind, command_line, run_options
from extsvc.executor.options import DaemonOptions
from tests.support.ci import cannot_run


def _compile(tmp: Path, services: dict[str, dict[str, Any]]) -> Path:
    """Compile ``services`` (name -> YAML document as a dict) into tmp/out."""
    source = tmp / "src"
    source.mkdir(exist_ok=True)
    for name, fields in services.items():
        document = {"name": name, "container": {"entrypoint": "/bin/true"}, "restart": "always"}
        (source / f"{name}.yaml").write_text(json.dumps({**document, **fields}))
    out = tmp / "out"
    result = CliRunner().invoke(
        cli, ["compile", str(source), "-o", str(out), "--rootfs-base", str(tmp / "rootfs")]
    )
    assert result.exit_code == 0, result.output
    return out


def _chain(tmp: Path, middle_stop: str | None = None) -> Path:
    """a <- b <- c (three dependency levels); b with its own stopTimeout if given."""
    own = {"x-extsvc": {"stopTimeout": middle_stop}} if middle_stop else {}
    return _compile(
        tmp,
        {
            "a": {},
            "b": {"depends": [{"service": "ext-a"}], **own},
            "c": {"depends": [{"service": "ext-b"}]},
        },
    )


def _unit_text(*args: str) -> str:
    result = CliRunner().invoke(cli, ["systemd-unit", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _unit(*args: str) -> dict[str, str]:
    settings = {}
    for line in _unit_text(*args).splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings[key] = value
    return settings


def _run_arguments(unit: dict[str, str]) -> list[str]:
    """ExecStart's `extsvc run` arguments after OUT."""
    argv = shlex.split(unit["ExecStart"])
    return argv[argv.index("run") + 2 :]


def test_the_unit_is_notify_and_its_reload_waits_for_the_reload(tmp_path: Path) -> None:
    out = _chain(tmp_path)
    unit = _unit(
        str(out), "--state-dir", "/run/x", "--log-dir", "/var/log/x", "--stop-timeout", "20s",
        "--systemd-version", "252",
    )  # fmt: skip
    assert unit["Type"] == "notify"
    assert unit["KillMode"] == "mixed"
    # `extsvc reload` returns once the reload is applied; `kill -HUP` returned at once.
    (extsvc,) = shlex.split(unit["ExecStart"])[:1]
    assert shlex.split(unit["ExecReload"]) == [extsvc, "reload", "--state-dir", "/run/x"]
    assert unit["ExecStart"].endswith(
        f"run {out} --state-dir /run/x --log-dir /var/log/x --stop-timeout 20s"
    )
    assert int(unit["WatchdogSec"].removesuffix("s")) > 0
    assert "ConditionPathExists" not in unit


def test_systemd_253_reloads_with_notify_reload(tmp_path: Path) -> None:
    unit = _unit(str(_chain(tmp_path)), "--systemd-version", "253")
    assert unit["Type"] == "notify-reload"
    assert unit["ReloadSignal"] == "SIGHUP"
    assert "ExecReload" not in unit


def test_the_stop_timeout_covers_the_executors_own_bound_for_the_plan(tmp_path: Path) -> None:
    """Levels stop one after the other, each with its longest grace (b's own 2m here);
    systemd must not kill an executor still within its own bound."""
    out = _chain(tmp_path, middle_stop="2m")
    unit = _unit(str(out), "--stop-timeout", "20s", "--runtime-timeout", "10s")
    executor_bound = 20 + 120 + 20 + 2 * 10 + 5
    assert executor_bound == DaemonOptions(out, stop_timeout=20, runtime_timeout=10).shutdown_bound(
        load_plan(out)
    )
    assert unit["TimeoutStopSec"] == str(math.ceil(executor_bound + EXIT_MARGIN))
    # A reload stops what changed: the same bound.
    assert unit["TimeoutStartSec"] == unit["TimeoutStopSec"]


def test_the_longest_stop_timeout_is_a_number_and_a_longer_one_is_refused(
    tmp_path: Path,
) -> None:
    """Every duration is at most 168h (format.quantities): 99999999999h, which systemd
    could not hold (it was written as infinity), is refused like any other input."""
    out = str(_chain(tmp_path))
    assert _unit(out, "--stop-timeout", "168h")["TimeoutStopSec"].isdigit()
    refused = CliRunner().invoke(cli, ["systemd-unit", out, "--stop-timeout", "99999999999h"])
    assert refused.exit_code == 2
    assert "'99999999999h' is more than 168h (7 days)" in refused.output


def test_the_units_stop_timeout_reads_back_exactly(tmp_path: Path) -> None:
    """`run` must be able to parse what the unit passes it (`{x:g}` wrote 3.6e+14s)."""
    out = _chain(tmp_path)
    for given, written in [
        ("20s", "20s"),
        ("1.5s", "1500ms"),
        ("167h59m59.5s", "604799500ms"),
        ("168h", "604800s"),  # the longest duration (format.quantities)
    ]:
        unit = _unit(str(out), "--stop-timeout", given)
        assert unit["ExecStart"].endswith(f"--stop-timeout {written}")
        assert parse_duration(written) == parse_duration(given)


# Text options whose default is no example of a value (a new one: add it here).
TEXT_SAMPLES = {"runtime": "/usr/sbin/runc", "metrics_listen": "127.0.0.1:9477"}


def _sample(option: Any, tmp: Path) -> list[str]:
    """A value for each kind of `run` option (relative paths: the unit makes them absolute)."""
    if option.kind is Kind.FLAG:
        return [option.flag]
    if option.dest == "host_services":
        (tmp / "hs.yaml").write_text("cri: {path: /run/cri.sock}\n")
        return [option.flag, "hs.yaml"]
    samples = {
        Kind.PATH: f"relative/{option.dest}",
        Kind.DURATION: "1.5s",
        Kind.CHOICE: option.choices[-1] if option.choices else "",
        Kind.TEXT: TEXT_SAMPLES.get(option.dest, str(option.default)),
    }
    return [option.flag, samples[option.kind]]


def test_every_run_option_reaches_execstart_as_run_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One table (run's own parser): every option given to systemd-unit is in ExecStart,
    and `run` parses ExecStart to what it would have parsed from the same options."""
    monkeypatch.chdir(tmp_path)
    out = _chain(tmp_path)
    given = [word for option in run_options() for word in _sample(option, tmp_path)]
    assert {"--host-services", "--config-dir", "--console", "--runtime", "--log-dir"} <= set(given)
    unit = _unit(str(out), *given)
    from_unit = vars(run.parser().parse_args([str(out), *_run_arguments(unit)]))
    direct = vars(run.parser().parse_args([str(out), *given]))
    for key, value in direct.items():
        expected = value.absolute() if isinstance(value, Path) else value
        assert from_unit[key] == expected, key
        assert not isinstance(from_unit[key], Path) or from_unit[key].is_absolute()


def test_options_not_given_are_left_to_runs_defaults(tmp_path: Path) -> None:
    unit = _unit(str(_chain(tmp_path)))
    assert _run_arguments(unit) == ["--state-dir", "/run/extsvc", "--log-dir", "/var/log/extsvc"]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--console", "tty"], "'tty' is not one of 'stdout', 'kmsg', 'none'"),
        (["--stop-timeout", "soon"], "invalid duration 'soon'"),
        (["--log-max-files", "0"], "invalid count of files '0': write 1 to 100"),
    ],
)
def test_a_bad_option_value_is_refused_like_run_refuses_it(
    tmp_path: Path, given: list[str], said: str
) -> None:
    result = CliRunner().invoke(cli, ["systemd-unit", str(_chain(tmp_path)), *given])
    assert result.exit_code == 2
    assert said in result.output
    assert "[Service]" not in result.output


def test_a_missing_out_is_an_error_not_a_unit_that_never_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["systemd-unit", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'out'}: no such file (run `extsvc compile SRC -o OUT` first)" in (
        result.output
    )
    assert "[Service]" not in result.output


def test_a_broken_host_services_file_is_refused_now_not_at_boot(tmp_path: Path) -> None:
    (tmp_path / "hs.yaml").write_text("cri:\n  pth: /run/x\n")
    out = _chain(tmp_path)
    result = CliRunner().invoke(
        cli, ["systemd-unit", str(out), "--host-services", str(tmp_path / "hs.yaml")]
    )
    assert result.exit_code == 1
    assert "hs.yaml:2:3: error: cri.pth: unknown field 'pth'" in result.output
    assert "[Service]" not in result.output


def test_execstart_is_the_installed_entry_point(tmp_path: Path) -> None:
    """An absolute path to this installation's `extsvc` script (the venv's), which runs."""
    unit = _unit(str(_chain(tmp_path)), "--watchdog", "0s")
    program = Path(shlex.split(unit["ExecStart"])[0])
    assert program.is_absolute()
    assert program.name == "extsvc"
    ran = subprocess.run([program, "systemd-unit", "--help"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert "WatchdogSec" not in unit


def test_specifiers_and_variables_are_escaped_in_exec_lines() -> None:
    assert command_line(["/opt/a%b/extsvc", "run", "/srv/$out dir"]) == (
        "/opt/a%%b/extsvc run '/srv/$$out dir'"
    )


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        cannot_run("no systemd-analyze (apt-get install systemd)")
    unit = tmp_path / "extsvc.service"
    unit.write_text(_unit_text(str(_chain(tmp_path))))
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
