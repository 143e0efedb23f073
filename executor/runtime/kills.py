"""Killing what runc does not kill itself.

Two cases. A create stopped in its middle leaves its init in the container's cgroup,
in a session of its own, where `runc delete` does not look: ``empty_cgroup`` kills
what the cgroup still holds and waits until it is reaped (the cgroup cannot be
removed before). A health check's `runc exec` starts its process in a session of its
own too, named only by the PID file runc writes once it started:
``kill_when_named`` kills it as soon as the file names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from extsvc.executor.host.inotify import DirectoryWatch
from extsvc.executor.process import reaper
from extsvc.executor.runtime import cgroups


async def empty_cgroup(cgroups_path: str, limit: float) -> set[int]:
    """SIGKILL every process in the cgroup and wait until none is left, at most ``limit``
    seconds; returns the PIDs still there then. What runc left is the executor's (a
    subreaper): each is waited for until reaped, as an ended process holds its cgroup
    until then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    before: set[int] = set()
    while pids := cgroups.processes(cgroups_path):
        remaining = deadline - loop.time()
        if pids == before or remaining <= 0:
            # The same ones again: ended, not ours to reap, and their parent does not.
            return pids
        pidfds: dict[int, int] = {}
        try:
            for pid in pids:
                pidfd = _kill_in_cgroup(cgroups_path, pid)
                if pidfd is not None:
                    pidfds[pid] = pidfd
            await reaper.children().reaped(pidfds, remaining)
        finally:
            for pidfd in pidfds.values():
                os.close(pidfd)
        before = pids
    return set()


def _kill_in_cgroup(cgroups_path: str, pid: int) -> int | None:
    """SIGKILL ``pid`` if it is in the cgroup; its pidfd (to wait on), None if it is not
    there any more. Signalled through the pidfd once the cgroup is known to hold this
    very process: never a PID reused since it was listed."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None  # ended and reaped since it was listed
    if not cgroups.holds(cgroups_path, pid):
        os.close(pidfd)
        return None
    with contextlib.suppress(ProcessLookupError):  # it ended: still to be reaped
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    return pidfd


async def kill_when_named(pid_file: Path, runner: reaper.Child, limit: float) -> None:
    """SIGKILL the process ``pid_file`` names, once it does (written by ``runner``);
    gives up when ``runner`` ends without writing it, or after ``limit`` seconds. A
    cancellation gives up too, after one last look at the file."""
    named = asyncio.Event()
    try:
        watch: DirectoryWatch | None = DirectoryWatch(pid_file.parent, named.set)
    except OSError:
        watch = None  # no inotify left: look once now, once at the limit
    try:
        deadline = time.monotonic() + limit
        while True:
            if _kill_named(pid_file):
                return
            remaining = deadline - time.monotonic()
            if runner.exited.done() or remaining <= 0:
                return
            named.clear()
            named_now: asyncio.Future[Any] = asyncio.ensure_future(named.wait())
            exited: asyncio.Future[Any] = runner.exited
            try:
                await asyncio.wait(
                    {named_now, exited}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                named_now.cancel()
    except asyncio.CancelledError:
        _kill_named(pid_file)
        raise
    finally:
        if watch is not None:
            watch.close()


def _kill_named(pid_file: Path) -> bool:
    """SIGKILL the process ``pid_file`` names; False while it names none (not written yet)."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        return True
    return False
