"""Per-service log files: bounded rotation, tails across rotation, followers, console."""

from __future__ import annotations

import asyncio
import io
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from extsvc.executor.logs.logfile import (
    MARKER,
    OUTPUT,
    LogRecord,
    decode,
    format_record,
    merge,
    parse_time,
    read_service,
    run_ended,
    run_started,
    service_files,
    services_in,
    stamp,
)
from extsvc.executor.logs.servicelog import KmsgConsole, RotatingFile, ServiceLog, StdoutConsole


def test_rotation_keeps_a_bounded_total(tmp_path: Path) -> None:
    log = RotatingFile(tmp_path / "ext-a.log", max_bytes=100, backups=2)
    for index in range(100):
        log.write(f"line {index:03d}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ext-a.log", "ext-a.log.1", "ext-a.log.2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 300
    assert (tmp_path / "ext-a.log").read_text().endswith("line 099\n")


def test_tail_reads_across_rotated_files_in_order(tmp_path: Path) -> None:
    log = ServiceLog("ext-a", tmp_path, console=None, max_bytes=130, backups=3)
    for index in range(12):
        log.write(f"line {index}")
    assert [r.line for r in log.tail(5)] == [f"line {i}" for i in range(7, 12)]
    assert log.tail(0) == []
    everything = [r.line for r in log.tail(None)]
    assert everything == sorted(everything, key=lambda line: int(line.split()[1]))
    assert everything[-1] == "line 11"
    assert log.last_line == "line 11"


def test_followers_get_every_new_line_and_the_end(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        log = ServiceLog("ext-a", tmp_path, console=None, max_bytes=30, backups=1)
        log.write("before")
        queue = log.follow()
        for index in range(10):  # rotates several times: following does not care
            log.write(f"after {index}")
        log.close()
        return [getattr(queue.get_nowait(), "line", None) for _ in range(11)]

    received = asyncio.run(scenario())
    assert received == [*(f"after {i}" for i in range(10)), None]


def test_console_lines_are_prefixed_with_the_service_id(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = ServiceLog("ext-a", tmp_path, console=StdoutConsole(stream))
    log.write("hello")
    assert stream.getvalue() == "ext-a: hello\n"


def test_kmsg_console_writes_one_info_record_per_line(tmp_path: Path) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.touch()
    console = KmsgConsole(kmsg)
    console.write("ext-a", "first")
    console.write("ext-a", "second")
    assert kmsg.read_text() == "<6>ext-a: first\n<6>ext-a: second\n"


def test_each_stored_line_carries_its_time_and_stream(tmp_path: Path) -> None:
    log = ServiceLog("ext-a", tmp_path, console=None)
    log.mark(run_started("ext-a", 1))
    log.write("hello")
    log.mark(run_ended(1))
    log.close()
    stored = (tmp_path / "ext-a.log").read_text().splitlines()
    assert [line.split(" ", 2)[1:] for line in stored] == [
        ["extsvc", "-- ext-a run 1 started --"],
        ["output", "hello"],
        ["extsvc", "-- exited with code 1 --"],
    ]
    for line in stored:
        moment = line.split(" ", 1)[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", moment)
        assert datetime.fromisoformat(moment).tzinfo is not None


def test_a_line_stored_before_stamps_reads_as_output_without_time() -> None:
    assert decode(b"plain old line\n", "ext-a") == LogRecord("", OUTPUT, "plain old line", "ext-a")
    assert decode(b"2026-01-02T03:04:05.006Z extsvc -- x --\n") == LogRecord(
        "2026-01-02T03:04:05.006Z", MARKER, "-- x --"
    )


def test_stamp_is_rfc3339_utc_with_milliseconds() -> None:
    assert stamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert stamp(1767323045.0069) == "2026-01-02T03:04:05.006Z"


def _write(path: Path, *records: tuple[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for moment, line in records:
            handle.write(f"{moment} output {line}\n")


def test_tail_and_since_read_from_the_end_across_files(tmp_path: Path) -> None:
    _write(
        tmp_path / "ext-a.log.1", *((f"2026-01-01T00:00:0{i}.000Z", f"old {i}") for i in range(5))
    )
    _write(tmp_path / "ext-a.log", *((f"2026-01-01T00:00:1{i}.000Z", f"new {i}") for i in range(5)))
    files = service_files(tmp_path, "ext-a")
    assert [p.name for p in files] == ["ext-a.log.1", "ext-a.log"]
    assert [r.line for r in read_service(files, "ext-a", 7)] == [
        "old 3", "old 4", "new 0", "new 1", "new 2", "new 3", "new 4",
    ]  # fmt: skip
    since = "2026-01-01T00:00:04.000Z"
    assert [r.line for r in read_service(files, "ext-a", None, since)][:2] == ["old 4", "new 0"]
    assert [r.line for r in read_service(files, "ext-a", 100, since)][:2] == ["old 4", "new 0"]
    assert len(read_service(files, "ext-a", None)) == 10


def test_all_services_interleave_by_time(tmp_path: Path) -> None:
    _write(
        tmp_path / "ext-a.log",
        ("2026-01-01T00:00:01.000Z", "a1"),
        ("2026-01-01T00:00:03.000Z", "a3"),
    )
    _write(
        tmp_path / "ext-b.log",
        ("2026-01-01T00:00:02.000Z", "b2"),
        ("2026-01-01T00:00:04.000Z", "b4"),
    )
    services = services_in(tmp_path)
    assert services == ["ext-a", "ext-b"]
    per = [read_service(service_files(tmp_path, s), s, None) for s in services]
    merged = merge(per, None)
    assert [format_record(r, False, True) for r in merged] == [
        "ext-a: a1", "ext-b: b2", "ext-a: a3", "ext-b: b4",
    ]  # fmt: skip
    assert [r.line for r in merge(per, 2)] == ["a3", "b4"]
    assert format_record(merged[0], True, False) == "2026-01-01T00:00:01.000Z a1"


def test_since_takes_a_duration_or_a_time() -> None:
    now = 1767323045.0  # 2026-01-02T03:04:05Z
    assert parse_time("10m", now=now) == "2026-01-02T02:54:05.000Z"
    assert parse_time("2026-01-02T03:00:00Z", now=now) == "2026-01-02T03:00:00.000Z"
    assert parse_time("2026-01-02T04:00:00+01:00", now=now) == "2026-01-02T03:00:00.000Z"
    with pytest.raises(ValueError, match="invalid --since 'the day before'"):
        parse_time("the day before", now=now)


def test_a_partial_line_is_passed_on_after_the_delay_and_no_timer_waits_while_idle() -> None:
    from extsvc.executor.runtime.output import pump_lines

    async def scenario() -> tuple[list[tuple[bytes, bool]], list[asyncio.TimerHandle]]:
        loop = asyncio.get_running_loop()
        armed: list[asyncio.TimerHandle] = []
        call_later = loop.call_later

        def spy(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
            handle = call_later(delay, callback, *args)
            if getattr(callback, "__name__", "") == "flush_partial":  # not asyncio.sleep's
                armed.append(handle)
            return handle

        loop.call_later = spy  # type: ignore[method-assign]
        got: list[tuple[bytes, bool]] = []
        read_fd, write_fd = os.pipe()
        pump = asyncio.ensure_future(
            pump_lines(read_fd, lambda line, at, partial=False: got.append((line, partial)), 0.2)
        )
        os.write(write_fd, b"whole line\n")
        await asyncio.sleep(0.3)
        assert armed == []  # nothing waits: no timer
        os.write(write_fd, b"Password: ")
        await asyncio.sleep(0.05)
        assert got == [(b"whole line", False)] and len(armed) == 1
        await asyncio.sleep(0.3)  # past the delay: the piece is passed on, marked
        assert got[-1] == (b"Password: ", True) and len(armed) == 1
        os.write(write_fd, b"typed\nhalf")
        await asyncio.sleep(0.05)
        os.write(write_fd, b" and the rest\n")  # ended before the delay: one line, no piece
        await asyncio.sleep(0.3)
        os.close(write_fd)
        await pump
        return got, armed

    got, armed = asyncio.run(scenario())
    assert got == [
        (b"whole line", False),
        (b"Password: ", True),
        (b"typed", False),
        (b"half and the rest", False),
    ]
    assert len(armed) == 2 and armed[1].cancelled()
