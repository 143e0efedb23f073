"""A container's output: its one pipe read into lines, for the service's log.

The container writes stdout and stderr into one pipe (executor.runtime.runc says
why); this reads it until every writer has closed it. No thread, no timer while the
pipe is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from extsvc.executor.process.helpers import read_pipe
from extsvc.executor.runtime.protocol import OutputSink

MAX_LINE_BYTES = 64 * 1024
# A line not ended after this long (a prompt, progress dots) reaches the log as a piece.
PARTIAL_LINE_DELAY = 1.0
# After the init exits, its pipe closes as soon as the last container process is gone.
OUTPUT_DRAIN_TIMEOUT = 2.0


async def pump_lines(
    read_fd: int, on_output: OutputSink, partial_delay: float = PARTIAL_LINE_DELAY
) -> None:
    """Call ``on_output(line, time read)`` per line until every writer has closed the pipe.

    A line not ended yet (a prompt, a progress dot) is passed on as a partial piece
    (``partial=True``) once it has waited ``partial_delay`` seconds, and the rest of it
    follows as a piece or the line's end; an over-long line is passed on in
    MAX_LINE_BYTES partial pieces rather than dropped; a last line without a newline is
    passed on at the end. The timer exists only while part of a line waits: an idle
    pipe costs no wake-up.
    """
    pending = bytearray()
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None

    def flush_partial() -> None:
        nonlocal timer
        timer = None
        if pending:
            on_output(bytes(pending), time.time(), True)
            pending.clear()

    def on_chunk(chunk: bytes) -> None:
        nonlocal timer
        now = time.time()
        pending.extend(chunk)
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            on_output(_strip_cr(bytes(pending[start:end])), now, False)
            start = end + 1
        del pending[:start]
        while len(pending) >= MAX_LINE_BYTES:
            on_output(bytes(pending[:MAX_LINE_BYTES]), now, True)
            del pending[:MAX_LINE_BYTES]
        if not pending and timer is not None:
            timer.cancel()
            timer = None
        elif pending and timer is None:
            # Armed by the first byte that waits, not moved by later ones: a dot a second
            # still reaches the log within partial_delay.
            timer = loop.call_later(partial_delay, flush_partial)

    try:
        await read_pipe(read_fd, on_chunk)
    finally:
        if timer is not None:
            timer.cancel()
    if pending:
        on_output(_strip_cr(bytes(pending)), time.time(), False)


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


async def settle(pump: asyncio.Future[None]) -> None:
    """Wait for ``pump`` to finish, at most OUTPUT_DRAIN_TIMEOUT: a process that keeps
    the pipe open after the init exited holds up no one for longer."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(pump), OUTPUT_DRAIN_TIMEOUT)
