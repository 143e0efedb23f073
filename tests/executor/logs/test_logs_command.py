"""`extsvc logs` as an operator uses it: every service merged, relative times, --until, -n,
and errors that say what is wrong in one line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.executor.logs.logfile import (
    PARTIAL,
    LogRecord,
    format_record,
    parse_count,
    parse_time,
    read_service,
    service_files,
    stamp,
)

NOW = 1767323045.0  # 2026-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", "2026-01-02T02:59:05.000Z"),
        ("-5m", "2026-01-02T02:59:05.000Z"),
        ("- 5m", "2026-01-02T02:59:05.000Z"),
        ("5m ago", "2026-01-02T02:59:05.000Z"),
        ("1h ago", "2026-01-02T02:04:05.000Z"),
        ("1h30m ago", "2026-01-02T01:34:05.000Z"),
        ("  1H AGO ", "2026-01-02T02:04:05.000Z"),
        ("10 minutes ago", "2026-01-02T02:54:05.000Z"),
        ("1h 30min ago", "2026-01-02T01:34:05.000Z"),
        ("-2d", "2025-12-31T03:04:05.000Z"),
        ("1 week ago", "2025-12-26T03:04:05.000Z"),
        ("500ms ago", "2026-01-02T03:04:04.500Z"),
        ("now", "2026-01-02T03:04:05.000Z"),
        ("2026-01-02T03:00:00Z", "2026-01-02T03:00:00.000Z"),
        ("2026-01-02T04:00:00+01:00", "2026-01-02T03:00:00.000Z"),
        ("99999999h ago", "1970-01-01T00:00:00.000Z"),  # everything, not an error
    ],
)
def test_since_and_until_take_relative_and_absolute_times(text: str, expected: str) -> None:
    assert parse_time(text, "--since", NOW) == expected


def test_local_forms_are_local_time() -> None:
    midnight = datetime.fromtimestamp(NOW).replace(hour=0, minute=0, second=0)
    assert parse_time("today", now=NOW) == stamp(midnight.timestamp())
    yesterday = datetime.fromtimestamp(NOW - 86400).replace(hour=0, minute=0, second=0)
    assert parse_time("yesterday", now=NOW) == stamp(yesterday.timestamp())
    local = datetime(2026, 1, 2, 15, 4)
    assert parse_time("2026-01-02 15:04", now=NOW) == stamp(local.timestamp())
    assert parse_time("2026-01-02", now=NOW) == stamp(datetime(2026, 1, 2).timestamp())


@pytest.mark.parametrize(
    "text", ["last tuesday", "5 parsecs ago", "-", "5", "2 months ago", "x" * 100_000]
)
def test_a_bad_time_is_one_short_line(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_time(text, "--until", NOW)
    message = str(raised.value)
    assert message.startswith("invalid --until '")
    assert "\n" not in message and len(message) < 250


def test_line_counts() -> None:
    assert parse_count("10") == 10
    assert parse_count("0") == 0
    assert parse_count("all") is None and parse_count("-1") is None
    assert parse_count("9" * 5000) is None  # more than any log holds: all
    for bad in ("ten", "-5", "1e3", "x" * 100_000):
        with pytest.raises(ValueError, match=r"^invalid -n '") as raised:
            parse_count(bad, "-n")
        assert len(str(raised.value)) < 250


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ext-a.log").write_text(
        "2026-01-02T03:00:01.000Z extsvc -- ext-a run 1 started --\n"
        "2026-01-02T03:00:03.000Z output a at 3\n"
        "2026-01-02T03:00:05.000Z partial Password: \n"
        "2026-01-02T03:00:06.000Z output typed\n"
    )
    (logs / "ext-b.log").write_text(
        "2026-01-02T03:00:02.000Z output b at 2\n2026-01-02T03:00:04.000Z output b at 4\n"
    )
    return logs


def _logs_command(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["logs", *args, "--state-dir", str(tmp_path / "state")])
    return result.exit_code, result.stdout, result.stderr


def test_logs_without_a_name_merges_every_service_by_time(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    code, out, err = _logs_command(tmp_path, "--log-dir", str(logs))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "ext-a: -- ext-a run 1 started --",
        "ext-b: b at 2",
        "ext-a: a at 3",
        "ext-b: b at 4",
        "ext-a: Password: \\",  # a piece written before its newline, continued below
        "ext-a: typed",
    ]
    code, out, _ = _logs_command(tmp_path, "--log-dir", str(logs), "-n", "2", "--timestamps")
    assert out.splitlines() == [
        "2026-01-02T03:00:05.000Z ext-a: Password: \\",
        "2026-01-02T03:00:06.000Z ext-a: typed",
    ]


def test_since_until_and_n_bound_what_is_printed(tmp_path: Path) -> None:
    logs = str(_logs(tmp_path))
    window = ["--since", "2026-01-02T03:00:02Z", "--until", "2026-01-02T03:00:04Z"]
    code, out, _ = _logs_command(tmp_path, "--log-dir", logs, *window)
    assert (code, out.splitlines()) == (0, ["ext-b: b at 2", "ext-a: a at 3", "ext-b: b at 4"])
    code, out, _ = _logs_command(tmp_path, "--log-dir", logs, *window, "--lines", "1")
    assert out.splitlines() == ["ext-b: b at 4"]
    code, out, _ = _logs_command(tmp_path, "a", "--log-dir", logs, *window)
    assert out.splitlines() == ["a at 3"]
    # Relative: everything is older than a minute ago.
    code, out, err = _logs_command(tmp_path, "--log-dir", logs, "--since", "1m ago")
    assert (code, out) == (0, "")
    assert err == f"extsvc: no log lines in {logs} in that time range\n"


def test_a_missing_log_dir_is_an_error_and_an_empty_one_is_said(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    for args in ([], ["ext-a"], ["-f"]):
        code, out, err = _logs_command(tmp_path, *args, "--log-dir", str(missing))
        assert code == 1 and out == ""
        assert err == (
            f"extsvc: error: no logs at {missing}: no such directory (pass --log-dir, "
            "or the --state-dir of the daemon whose logs to read)\n"
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in ([], ["--since", "5m ago"]):
        code, out, err = _logs_command(tmp_path, "--log-dir", str(empty), *args)
        assert (code, out, err) == (0, "", f"extsvc: no service logs in {empty}\n")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--since", "x" * 100_000], "extsvc: error: invalid --since 'xxxxx"),
        (["--until", "someday"], "extsvc: error: invalid --until 'someday'"),
        (["-n", "ten"], "extsvc: error: invalid --tail 'ten'"),
        (["-f", "--until", "now"], "extsvc: error: --until cannot be used with -f"),
    ],
)
def test_bad_values_are_one_short_line_exit_2(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    code, out, err = _logs_command(tmp_path, *args, "--log-dir", str(_logs(tmp_path)))
    assert code == 2 and out == ""
    assert err.startswith(problem)
    assert err.count("\n") == 1 and len(err) < 250


def test_until_reads_from_the_end_across_files(tmp_path: Path) -> None:
    (tmp_path / "ext-a.log.1").write_text(
        "".join(f"2026-01-01T00:00:0{i}.000Z output old {i}\n" for i in range(5))
    )
    (tmp_path / "ext-a.log").write_text(
        "".join(f"2026-01-01T00:00:1{i}.000Z output new {i}\n" for i in range(5))
    )
    files = service_files(tmp_path, "ext-a")
    until = "2026-01-01T00:00:10.000Z"
    assert [r.line for r in read_service(files, "ext-a", 2, until=until)] == ["old 4", "new 0"]
    assert [r.line for r in read_service(files, "ext-a", None, until=until)][-1] == "new 0"


def test_a_partial_piece_is_marked_where_people_read_it() -> None:
    piece = LogRecord("2026-01-02T03:00:05.000Z", PARTIAL, "Password: ", "ext-a")
    assert format_record(piece, False, True) == "ext-a: Password: \\"
    assert piece.to_json()["stream"] == "partial"
