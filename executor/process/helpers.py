"""Short-lived helper processes (runc start/delete/exec, readiness commands).

Spawned and reaped by executor.process.reaper (the one owner of every exit status), their
output read from a pipe on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from extsvc.executor.process import reaper
from extsvc.executor.process.spawn import DEVNULL

# One read per readiness of a pipe: what a turn of the loop may cost per flooding
# service is what its lines of one chunk cost (~10 us each, a few hundred lines), so
# with twenty services flooding a turn stays well under 100 ms and the control socket,
# served between turns, answers within one (64 KiB made turns of 0.5-1 s in the soak).
READ_CHUNK = 16 * 1024
# The exit code run_process reports for a command it killed at its timeout.
TIMED_OUT = -9


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str
    timed_out: bool = False

    @property
    def last_line(self) -> str:
        return last_line(self.output)


def last_line(output: str) -> str:
    """The last line of ``output`` with text on it, stripped: what a failure says last."""
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


async def run_process(
    argv: Sequence[str],
    timeout: float | None = None,
    capture: bool = True,
    before_kill: Callable[[reaper.Child], Awaitable[None]] | None = None,
) -> Completed:
    """Run ``argv`` to completion; stdout and stderr merged. A timeout kills it (code -9).

    The helper leads its own session and process group (reaper.spawn): a timeout or
    a cancellation (a stop, a shutdown) SIGKILLs the group, so nothing a hung helper
    forked outlives it.

    ``before_kill``, at the timeout, is awaited before the group is killed: for what
    the helper started outside its group (`runc exec`'s process has a session of its
    own) and only the helper can name.

    A missing program is reported like the shell does (code 127), not raised:
    callers treat every failure the same way.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC) if capture else (-1, DEVNULL)
    try:
        child = reaper.children().spawn(argv, stdout=write_end, stderr=write_end)
    except OSError as error:
        if capture:
            os.close(read_end)
            os.close(write_end)
        return Completed(127, f"{argv[0]}: {os.strerror(error.errno or 0)}")
    output = asyncio.ensure_future(_read_all(read_end, write_end)) if capture else None
    try:
        code = await asyncio.wait_for(asyncio.shield(child.exited), timeout)
    except TimeoutError:
        try:
            if before_kill is not None:
                await before_kill(child)
        finally:
            # Even when the hook is cancelled (a stop, a caller's bound): nothing of the
            # helper's group may stay.
            child.kill_group()
            if output is not None:
                output.cancel()  # a descendant may still hold the pipe
        await child.exited
        return Completed(TIMED_OUT, "(timed out)", timed_out=True)
    except asyncio.CancelledError:
        child.kill_group()
        if output is not None:
            output.cancel()
        raise
    text = (await output).decode(errors="replace") if output else ""
    return Completed(code, text)


async def _read_all(read_fd: int, write_fd: int) -> bytes:
    """Everything written to the pipe until its last writer closes it."""
    os.close(write_fd)  # the child holds its own copy
    chunks: list[bytes] = []
    await read_pipe(read_fd, chunks.append)
    return b"".join(chunks)


async def read_pipe(read_fd: int, on_chunk: Callable[[bytes], None]) -> None:
    """Pass what the pipe gives to ``on_chunk`` until every writer has closed it; closes it.

    One read per readiness of the fd, as asyncio's own transports read: a writer as
    fast as the executor reads (a container flooding its output) then gets one chunk
    per turn of the loop, and the control socket and the other pipes get theirs.
    """
    loop = asyncio.get_running_loop()
    os.set_blocking(read_fd, False)
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(read_fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            on_chunk(chunk)
            return
        loop.remove_reader(read_fd)
        if not done.done():
            done.set_result(None)

    loop.add_reader(read_fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(read_fd)
        with contextlib.suppress(OSError):
            os.close(read_fd)
