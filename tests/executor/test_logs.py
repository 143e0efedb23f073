"""Per-service log files: bounded rotation, tails across rotation, followers, console."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from extsvc.executor.logs import KmsgConsole, RotatingFile, ServiceLog, StdoutConsole


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
    log = ServiceLog("ext-a", tmp_path, console=None, max_bytes=50, backups=3)
    for index in range(12):
        log.write(f"line {index}")
    assert log.tail(5) == [f"line {i}" for i in range(7, 12)]
    assert log.tail(0) == []
    everything = log.tail(None)
    assert everything == sorted(everything, key=lambda line: int(line.split()[1]))
    assert everything[-1] == "line 11"
    assert log.last_line == "line 11"


def test_followers_get_every_new_line_and_the_end(tmp_path: Path) -> None:
    async def scenario() -> list[str | None]:
        log = ServiceLog("ext-a", tmp_path, console=None, max_bytes=30, backups=1)
        log.write("before")
        queue = log.follow()
        for index in range(10):  # rotates several times: following does not care
            log.write(f"after {index}")
        log.close()
        return [queue.get_nowait() for _ in range(11)]

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
