"""Durations and sizes: one parser for `extsvc run` options and the x-extsvc block."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.format.quantities import parse_duration, parse_size

# 400 digits: more than a float holds, so float() makes it inf.
NO_FLOAT = "9" * 400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("1m30s", 90.0), ("2h", 7200.0), ("0.5s", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 s", "1x", "s", "1m-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"write e\.g\. 500ms, 5s, 1m"):
        parse_duration(text)


def test_a_duration_no_float_holds_is_refused_not_infinite() -> None:
    with pytest.raises(ValueError, match=r"is more than 168h \(7 days\), the most a duration"):
        parse_duration(f"{NO_FLOAT}s")


def test_every_duration_has_one_bound_and_it_is_inclusive() -> None:
    assert parse_duration("168h") == 604800
    assert parse_duration("167h59m60s") == 604800
    with pytest.raises(ValueError, match=r"'168h1ms' is more than 168h \(7 days\), the most a"):
        parse_duration("168h1ms")
    with pytest.raises(ValueError, match="'5000h' is more than 168h"):
        parse_duration("5000h")


@pytest.mark.parametrize(
    "args",
    [
        ["systemd-unit", "out", "--stop-timeout", f"{NO_FLOAT}s"],
        ["logs", "ext-x", "--since", f"{NO_FLOAT}h", "--log-dir", ".", "--state-dir", "."],
    ],
)
def test_commands_refuse_a_duration_no_float_holds(args: list[str], tmp_path: Path) -> None:
    """They printed an OverflowError traceback (int(inf) in the unit's TimeoutStopSec and
    in a log stamp)."""
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["run", "out", "--stop-timeout", "200h"],
        ["run", "out", "--restart-interval", "200h"],
        ["systemd-unit", "out", "--stop-timeout", "200h"],
        ["service", "ext-x", "restart", "--timeout", "200h"],
    ],
    ids=lambda args: f"{args[0]} {args[-2]}",
)
def test_every_command_option_has_the_one_bound(
    args: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    """The same bound and the same sentence as a service file's x-extsvc durations."""
    from extsvc.entry import main

    with pytest.raises(SystemExit) as exited:
        exit_code = main(args)
        raise SystemExit(exit_code)
    assert exited.value.code == 2
    assert "'200h' is more than 168h (7 days), the most a duration may be" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512Mi", 512 * 1024**2),
        ("1Gi", 1024**3),
        ("1G", 1000**3),
        ("64k", 64000),
        ("1.5Ki", 1536),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


def test_parse_size_refuses_a_fraction_of_a_byte() -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        parse_size("0.1Gi")  # 107374182.4 bytes


@pytest.mark.parametrize("value", ["", "512MB", "1g", "Mi", "-1", "1 Gi", -5])
def test_parse_size_rejects(value: str | int) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [(2**63 - 1, 2**63 - 1), ("8388607Ti", 8388607 * 1024**4), ("0" * 5000 + "1", 1),
     ("1." + "0" * 5000 + "Gi", 1024**3), (1.0e18, 10**18), (1.5e3, 1500)],
    ids=["int64", "8388607Ti", "5000-zeros-then-1", "1.000...Gi", "1.0e18", "1.5e3"],
)  # fmt: skip
def test_parse_size_takes_up_to_int64(value: str | int | float, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    "value",
    [2**63, 16**4000, "8388608Ti", "9223372036854775808", "9" * 5000 + "Gi", 1.0e19],
    ids=["2**63", "16**4000", "8388608Ti", "2**63-as-text", "5000-digits-Gi", "1.0e19"],
)
def test_parse_size_refuses_more_than_int64(value: str | int | float) -> None:
    """Decided on the digits: int() of more than 4,300 of them raises its own ValueError."""
    with pytest.raises(ValueError, match=r"is more than 9223372036854775807 bytes \(8 EiB\)"):
        parse_size(value)
