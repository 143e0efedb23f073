"""`extsvc logs` of an executor that keeps its lines only in journald: read back through
journalctl, each entry the record a log file would hold (the rig, tests/boot, reads real
journald; these pin the conversion and the choice of source)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from extsvc.executor.cli.logcommand import _reads_journald
from extsvc.executor.logs.journalread import entry_record, journalctl_argv
from extsvc.executor.logs.logfile import LogRecord

EXTSVC = [sys.executable, "-m", "extsvc"]


def test_an_entry_is_the_record_a_log_file_would_hold() -> None:
    entry = {
        "__REALTIME_TIMESTAMP": "1764817692345678",
        "MESSAGE": "hello",
        "EXTSVC_SERVICE": "ext-web",
        "EXTSVC_STREAM": "output",
        "SYSLOG_IDENTIFIER": "ext-web",
    }
    assert entry_record(entry) == LogRecord(
        "2025-12-04T03:08:12.345Z", "output", "hello", "ext-web"
    )


def test_a_line_that_is_not_utf8_and_a_field_sent_twice_still_read() -> None:
    entry = {
        "__REALTIME_TIMESTAMP": "1764817692000000",
        "MESSAGE": [104, 105, 255],
        "EXTSVC_SERVICE": ["ext-web", "ext-web"],
        "EXTSVC_STREAM": "partial",
    }
    assert entry_record(entry) == LogRecord(
        "2025-12-04T03:08:12.000Z", "partial", "hi\ufffd", "ext-web"
    )


def test_journalctl_selects_the_services_the_count_and_the_range() -> None:
    argv = journalctl_argv(
        ["ext-a", "ext-b"], 10, "2025-12-04T03:08:12.345Z", "2025-12-04T04:00:00.000Z", False
    )
    assert argv[1:] == [
        "--no-pager", "--quiet", "--output=json", "--all", "--lines=10",
        "--since=@1764817692.345", "--until=@1764820800.000",
        "EXTSVC_SERVICE=ext-a", "EXTSVC_SERVICE=ext-b",
    ]  # fmt: skip
    assert "--follow" in journalctl_argv(["ext-a"], None, "", "", True)
    assert not any(a.startswith("--lines") for a in journalctl_argv(["ext-a"], None, "", "", True))


def _run_info(state_dir: Path, target: str, log_dir: Path) -> None:
    state_dir.mkdir()
    info = {"pid": 1, "plan": "/x", "logDir": str(log_dir), "logTarget": target}
    (state_dir / "run.json").write_text(json.dumps(info))


@pytest.mark.parametrize("target", ["files", "both"])
def test_a_daemon_that_keeps_files_is_read_from_its_files(tmp_path: Path, target: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ext-web.log").write_text("2025-12-04T03:08:12.345Z output from the file\n")
    _run_info(tmp_path / "state", target, logs)
    shown = subprocess.run(
        [*EXTSVC, "logs", "web", "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout == "from the file\n"


def test_auto_reads_journald_only_for_a_daemon_that_keeps_no_files(tmp_path: Path) -> None:
    _run_info(tmp_path / "state", "journald", tmp_path / "nowhere")
    state = tmp_path / "state"
    assert _reads_journald("auto", state, None)
    # A named --log-dir is what was asked for: its files, not journald.
    assert not _reads_journald("auto", state, tmp_path / "logs")
    assert not _reads_journald("files", state, None)
    assert _reads_journald("journald", tmp_path / "no-daemon", None)
    assert not _reads_journald("auto", tmp_path / "no-daemon", None)
