"""Service lines to journald's native protocol (executor.logs.journal), against a test socket.

``FakeJournald`` is the receiving side of systemd.io/JOURNAL_NATIVE_PROTOCOL written from
the document (both field forms, the sealed memfd of a large entry), so the encoding is
checked by decoding it. Under a real journald the rig checks `journalctl -t ext-NAME`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from extsvc.executor.logs.journal import (
    SEALS,
    Journal,
    JournalSocket,
    encode_entry,
    encode_field,
)
from extsvc.executor.logs.servicelog import ServiceLog
from extsvc.executor.options import DaemonOptions, LogTarget
from tests.executor.logs.fakejournald import FakeJournald, decode


@pytest.fixture
def journald(tmp_path: Path) -> FakeJournald:
    fake = FakeJournald(tmp_path / "journal.socket")
    yield fake
    fake.close()


def test_fields_use_the_binary_form_only_for_a_newline() -> None:
    assert encode_field("MESSAGE", "hello world") == b"MESSAGE=hello world\n"
    assert encode_field("PRIORITY", 6) == b"PRIORITY=6\n"
    assert encode_field("MESSAGE", "two\nlines") == (
        b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n"
    )
    entry = encode_entry([("A", "x=y"), ("B", b"\n"), ("C", "")])
    assert decode(entry) == [("A", b"x=y"), ("B", b"\n"), ("C", b"")]


def test_a_service_line_carries_its_identifier_service_run_and_pid(
    tmp_path: Path, journald: FakeJournald
) -> None:
    journal = Journal(journald.path)
    log = ServiceLog("ext-web", tmp_path / "logs", None, journal=journal)
    log.begin_run(3, 4242)
    log.write("listening on :8080")
    log.write("a line with\nan embedded newline and = sign")
    log.close()
    marker, line, odd = journald.entries()
    assert line == {
        "MESSAGE": "listening on :8080",
        "PRIORITY": "6",
        "SYSLOG_FACILITY": "3",
        "SYSLOG_IDENTIFIER": "ext-web",
        "EXTSVC_SERVICE": "ext-web",
        "EXTSVC_STREAM": "output",
        "EXTSVC_RUN": "3",
        "SYSLOG_PID": "4242",
    }
    assert marker["MESSAGE"] == "-- ext-web run 3 started --"
    assert (marker["PRIORITY"], marker["EXTSVC_STREAM"]) == ("5", "extsvc")
    assert odd["MESSAGE"] == "a line with\nan embedded newline and = sign"
    # The log file still has every line (--log-target both).
    assert "listening on :8080" in (tmp_path / "logs" / "ext-web.log").read_text()
    journal.close()


def test_journald_only_writes_no_file(tmp_path: Path, journald: FakeJournald) -> None:
    journal = Journal(journald.path)
    log = ServiceLog("ext-web", tmp_path / "logs", None, journal=journal, files=False)
    log.write("only in the journal")
    log.close()
    assert [e["MESSAGE"] for e in journald.entries()] == ["only in the journal"]
    assert not (tmp_path / "logs" / "ext-web.log").exists()
    assert log.files() == []
    journal.close()


def test_an_entry_too_large_for_a_datagram_goes_in_a_sealed_memfd(
    journald: FakeJournald,
) -> None:
    sender = JournalSocket(journald.path)
    big = "x" * (12 * 1024 * 1024)  # beyond the 8 MiB send buffer: EMSGSIZE
    assert sender.send(encode_entry([("MESSAGE", big), ("SYSLOG_IDENTIFIER", "t")])) is None
    (entry,) = journald.entries()
    assert entry["MESSAGE"] == big and entry["SYSLOG_IDENTIFIER"] == "t"
    assert journald.sealed == [SEALS]
    sender.close()


def test_a_stopped_journald_drops_counts_and_says_so_when_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.socket"
    reported: list[str] = []
    journal = Journal(path, on_dropped=reported.append)
    for index in range(25):
        journal.line("ext-web", f"lost {index}", 1, None, "output")
    assert (journal.dropped, journal.dropped_total) == (25, 25)
    assert reported == []
    journald = FakeJournald(path)  # journald is back
    journal.line("ext-web", "after", 1, None, "output")
    notice, after = journald.entries()
    message = "… 25 lines dropped: journald not accepting (ENOENT)"
    assert notice["MESSAGE"] == f"extsvc: {message}"
    assert (notice["SYSLOG_IDENTIFIER"], notice["PRIORITY"]) == ("extsvc", "4")
    assert after["MESSAGE"] == "after"
    assert reported == [message]
    journal.close()
    journald.close()


def test_a_journald_that_does_not_read_never_blocks_the_writer(
    journald: FakeJournald,
) -> None:
    reported: list[str] = []
    journal = Journal(journald.path, on_dropped=reported.append)
    line = "y" * 1000
    began = time.monotonic()
    for _ in range(20_000):  # 20 MB at a reader that reads nothing
        journal.line("ext-flood", line, 1, 7, "output")
    assert time.monotonic() - began < 10
    assert journal.dropped > 0
    taken = 20_000 - journal.dropped
    assert len(journald.entries()) == taken
    journal.line("ext-flood", "resumed", 1, 7, "output")
    notice, resumed = journald.entries()
    assert notice["MESSAGE"].startswith("extsvc: … ")
    assert "journald not accepting (EAGAIN)" in notice["MESSAGE"]
    assert resumed["MESSAGE"] == "resumed"
    assert len(reported) == 1
    journal.close()


def test_auto_is_both_under_systemd_with_journald_else_files(
    tmp_path: Path, journald: FakeJournald
) -> None:
    from extsvc.executor.daemon.main import log_target

    unit = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"}
    options = DaemonOptions(plan=tmp_path / "out", journal_socket=journald.path)
    assert log_target(options, unit) is LogTarget.BOTH
    assert log_target(options, {}) is LogTarget.FILES
    missing = DaemonOptions(plan=tmp_path / "out", journal_socket=tmp_path / "nothing")
    assert log_target(missing, unit) is LogTarget.FILES
    chosen = DaemonOptions(plan=tmp_path / "out", log_target=LogTarget.JOURNALD)
    assert log_target(chosen, {}) is LogTarget.JOURNALD


def test_a_journal_stream_is_told_by_its_device_and_inode(tmp_path: Path) -> None:
    from extsvc.executor.logs.journal import is_journal_stream

    with (tmp_path / "f").open("w") as file:
        status = os.fstat(file.fileno())
        stream = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        assert is_journal_stream(file.fileno(), stream)
        assert not is_journal_stream(file.fileno(), {})
        assert not is_journal_stream(file.fileno(), {"JOURNAL_STREAM": "1:2"})
