"""Stopping a running task: SIGTERM, the grace, then SIGKILL; or SIGKILL at once.

The grace is the service's own (x-extsvc ``stopTimeout``) or the executor's
(``--stop-timeout``, Talos's 10 s). ``kill_now`` (the executor's third Ctrl-C) cuts a
grace in progress short and makes every later stop send SIGKILL first. Either way
the stop ends when the task has exited; while it waits, ``status`` says what for, for
an operator.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from extsvc.compiler.format.durations import format_duration
from extsvc.executor.runtime.protocol import Container
from extsvc.executor.service.clock import Clock


class TaskStop:
    def __init__(self, task_id: str, clock: Clock, say: Callable[[str], None]) -> None:
        self.task_id = task_id
        self.clock = clock
        # The Stopping event of each signal sent.
        self._say = say
        # Set by kill_now(): a stop sends SIGKILL at once, or cuts the grace short.
        self._hurry = asyncio.Event()
        # While a stop signals the task: when SIGTERM went (clock.monotonic()), the grace,
        # and when SIGKILL went.
        self._signalled: tuple[float, float, float | None] | None = None

    def kill_now(self) -> None:
        self._hurry.set()

    def status(self) -> str | None:
        """What the stop in progress waits for ("SIGTERM sent 2s ago, SIGKILL in 8s");
        None while no task is being signalled."""
        if self._signalled is None:
            return None
        sent, grace, killed = self._signalled
        now = self.clock.monotonic()
        if killed is not None:
            return f"SIGKILL sent {format_duration(now - killed)} ago, waiting for it to exit"
        left = max(0.0, sent + grace - now)
        return f"SIGTERM sent {format_duration(now - sent)} ago, SIGKILL in {format_duration(left)}"

    async def terminate(self, container: Container, grace: float) -> int | None:
        """Stop ``container``'s task; its exit code once it has exited."""
        task = f"task {self.task_id} (PID {container.pid}, container {self.task_id})"
        if self._hurry.is_set():
            self._say(f"Sending SIGKILL to {task}: the executor was told to kill at once")
            self._signalled = (self.clock.monotonic(), 0.0, self.clock.monotonic())
            container.signal(signal.SIGKILL)
            try:
                return await container.wait()
            finally:
                self._signalled = None
        self._say(f"Sending SIGTERM to {task}")
        container.signal(signal.SIGTERM)
        self._signalled = (self.clock.monotonic(), grace, None)
        waiting = asyncio.ensure_future(container.wait())
        sleeping = asyncio.ensure_future(self.clock.sleep(grace))
        hurried = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait({waiting, sleeping, hurried}, return_when=asyncio.FIRST_COMPLETED)
            sleeping.cancel()
            hurried.cancel()
            if not waiting.done():
                why = (
                    "the executor was told to kill at once"
                    if self._hurry.is_set()
                    else f"still running {format_duration(grace)} after SIGTERM"
                )
                self._say(f"Sending SIGKILL to {task}: {why}")
                self._signalled = (self._signalled[0], grace, self.clock.monotonic())
                container.signal(signal.SIGKILL)
            return await waiting
        finally:
            self._signalled = None
