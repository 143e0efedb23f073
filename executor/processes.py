"""Short-lived helper processes (runc create/start/delete, readiness commands)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else ""


async def run_process(
    argv: Sequence[str], timeout: float | None = None, capture: bool = True
) -> Completed:
    """Run ``argv`` to completion; stdout and stderr merged. A timeout kills it (code -9).

    A missing program is reported like the shell does (code 127), not raised:
    callers treat every failure the same way.
    """
    output = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as error:
        return Completed(127, f"{argv[0]}: {os.strerror(error.errno or 0)}")
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        stdout, _ = await process.communicate()
        return Completed(-9, (stdout or b"").decode(errors="replace") + "\n(timed out)")
    return Completed(process.returncode or 0, (stdout or b"").decode(errors="replace"))
