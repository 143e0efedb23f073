"""Nothing the executor writes can block it, nothing a client does grows it: non-blocking console
and event output, kmsg refusals counted, bounded `logs -f` followers, a log file on a full disk."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from extsvc.executor.daemon.control import ControlClient
from extsvc.executor.logs import servicelog
from extsvc.executor.logs.logfile import OUTPUT, LogRecord
from extsvc.executor.logs.servicelog import FollowerQueue, KmsgConsole, ServiceLog
from extsvc.executor.logs.sinks import NonBlockingWriter
from tests.executor.world import with_server


def test_a_console_nobody_reads_drops_lines_and_says_how_many() -> None:
    async def scenario() -> tuple[int, int, list[str], bytes]:
        read_end, write_end = os.pipe()
        reported: list[str] = []
        writer = NonBlockingWriter(
            write_end, "console", capacity=64 * 1024, on_dropped=reported.append
        )
        line = b"x" * 99 + b"\n"
        for _ in range(10_000):  # 1 MB into a pipe of 64 KiB that nobody reads
            writer.write(line)
        buffered, dropped = writer.buffered, writer.dropped
        # The reader comes back: what waited arrives, then how much was lost.
        os.set_blocking(read_end, False)
        received = b""
        for _ in range(200):
            await asyncio.sleep(0.005)
            try:
                while chunk := os.read(read_end, 65536):
                    received += chunk
            except BlockingIOError:
                pass
            if b"dropped" in received:
                break
        writer.close()
        os.close(read_end)
        os.close(write_end)
        return buffered, dropped, reported, received

    buffered, dropped, reported, received = asyncio.run(scenario())
    assert buffered <= 64 * 1024
    assert dropped > 8_000
    assert reported == [f"… {dropped:,} lines dropped: console not reading"]
    assert received.endswith(f"extsvc: … {dropped:,} lines dropped: console not reading\n".encode())
    assert received.count(b"x" * 99 + b"\n") == 10_000 - dropped


def refusing_kmsg(tmp_path: Path) -> tuple[Path, int]:
    """A stand-in for a /dev/kmsg that refuses every record: a FIFO whose pipe is full
    and read by nobody (O_NONBLOCK, as kmsg is opened: a record is refused whole with
    EAGAIN). Returns the FIFO and its read end: reading makes room again."""
    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)
    filler = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert os.write(filler, b"f" * 4096) == 4096
    os.close(filler)
    return fifo, reader


def test_kmsg_records_the_kernel_refuses_are_counted_and_reported_once(tmp_path: Path) -> None:
    fifo, reader = refusing_kmsg(tmp_path)
    reported: list[str] = []
    console = KmsgConsole(fifo, on_dropped=reported.append)
    for index in range(1_234):
        console.write("ext-a", f"line {index}")
    assert (console.dropped, console.dropped_total) == (1_234, 1_234)
    assert reported == []  # nothing can say so while kmsg refuses everything
    # kmsg takes records again: first how many were lost, then the line.
    assert os.read(reader, 65536) == b"f" * 4096
    console.write("ext-a", "after")
    message = "… 1,234 lines dropped: kmsg not accepting (EAGAIN)"
    assert os.read(reader, 65536) == f"<6>extsvc: {message}\n<6>ext-a: after\n".encode()
    assert reported == [message]  # the daemon's notice on the event output
    console.write("ext-a", "and on")
    console.close()
    assert os.read(reader, 65536) == b"<6>ext-a: and on\n"
    assert reported == [message]  # once
    os.close(reader)


def test_kmsg_drops_still_refused_at_exit_are_reported_on_the_event_output(
    tmp_path: Path,
) -> None:
    fifo, reader = refusing_kmsg(tmp_path)
    reported: list[str] = []
    console = KmsgConsole(fifo, on_dropped=reported.append)
    for _ in range(3):
        console.write("ext-a", "never written")
    console.close()
    assert reported == ["… 3 lines dropped: kmsg not accepting (EAGAIN)"]
    assert os.read(reader, 65536) == b"f" * 4096
    os.close(reader)


def test_a_kmsg_record_is_cut_to_what_every_kernel_takes(tmp_path: Path) -> None:
    """Over 1,024 bytes (976 on some older kernels) the kernel refuses a record whole."""
    kmsg = tmp_path / "kmsg"
    kmsg.touch()
    console = KmsgConsole(kmsg)
    console.write("ext-a", "z" * 5000)
    console.close()
    assert kmsg.read_bytes() == (b"<6>ext-a: " + b"z" * 5000)[:976]
    assert console.dropped_total == 0


def test_a_follower_that_does_not_read_holds_a_bounded_number_of_bytes() -> None:
    async def scenario() -> tuple[int, int, list[LogRecord | None]]:
        queue = FollowerQueue(max_bytes=1024 * 1024)
        long_line = "y" * 64 * 1024
        for _ in range(1_000):  # 64 MB of lines for a client that reads nothing
            queue.put_nowait(LogRecord("", OUTPUT, long_line, "ext-a"))
        queue.put_nowait(None)  # the end is never dropped
        items = []
        while (item := await queue.get()) is not None:
            items.append(item)
        return len(items), queue.take_dropped(), [item]

    kept, dropped, end = asyncio.run(scenario())
    assert kept * 64 * 1024 <= 1024 * 1024
    assert kept + dropped == 1_000
    assert end == [None]


def test_a_full_disk_drops_log_lines_says_so_once_and_resumes(
    tiny_log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servicelog, "LOG_RETRY_SECONDS", 0.0)  # retry at every line, not every 2 s
    filler = tiny_log_dir / "filler"
    filler.write_bytes(b"f" * 40 * 1024)
    events: list[str] = []
    log = ServiceLog("ext-a", tiny_log_dir, console=None, max_bytes=10 * 1024 * 1024)
    log.on_problem = events.append
    for index in range(1_000):  # ~50 KB: more than the disk has left
        log.write(f"line {index:04d} " + "z" * 40)
    assert len(events) == 1
    assert events[0].startswith(
        "Log file ext-a.log cannot be written: No space left on device (ENOSPC)"
    )
    assert log.dropped_since_error > 0
    dropped = log.dropped_since_error
    filler.unlink()  # space comes back
    log.write("after the disk was freed")
    assert (
        events[1]
        == f"Log file ext-a.log written again: … {dropped:,} lines dropped: log file not writable"
    )
    assert log.tail(1)[0].line == "after the disk was freed"
    lines = [r.line for r in log.tail(None)]
    assert "line 0000 " + "z" * 40 in lines
    log.close()


def test_followers_whose_clients_left_are_dropped_at_once(tmp_path: Path) -> None:
    """200 `logs -f` clients of a quiet service disconnect: their connections are closed
    at once, not when the service writes again; 100 concurrent clients are all served."""
    holder: list[Any] = []

    def body(client: ControlClient) -> tuple[int, int, int]:
        supervisor = holder[0]
        log = supervisor.runners["ext-a"].log
        before = len(os.listdir("/proc/self/fd"))
        connections = []
        for _ in range(200):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(client.path))
            connection.sendall(b'{"op": "logs", "id": "ext-a", "tail": 0, "follow": true}\n')
            connections.append(connection)
        deadline = time.monotonic() + 20
        while len(log._followers) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        following = len(log._followers)
        for connection in connections:
            connection.close()
        while log._followers and time.monotonic() < deadline:
            time.sleep(0.01)
        left = len(log._followers)
        # 100 clients at once, each answered.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda _: client.request({"op": "services"}), range(100)))
        assert all(a["ok"] for a in answers)
        while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
            time.sleep(0.01)
        return following, left, len(os.listdir("/proc/self/fd")) - before

    following, left, extra_fds = asyncio.run(with_server(tmp_path, body, holder))
    assert following == 200
    assert left == 0
    assert extra_fds <= 0
