"""One owner of every exit status: the executor spawns, adopts and reaps all its children.

Each process the executor starts (runc create/start/delete, readiness commands) is
spawned with posix_spawn (executor.process.spawn) and watched through a pidfd; each
container's init, re-parented to the executor (a child subreaper) when `runc create` exits, is
adopted through a pidfd as well. A pidfd becomes readable when its process ends
and ``waitid(P_PIDFD)`` reads that one status, so a status is read exactly once,
by the one who asked for it.

Anything else that becomes our child (an orphan re-parented to the subreaper) is
a stray: after SIGCHLD, every child nobody waits for is reaped, by its pid, never
with ``waitpid(-1)``. There is no asyncio child watcher (asyncio's subprocess
functions are not used), so nothing else calls wait: a status can never be stolen.
The one window where a stray could be confused with an owned child, a container's
init between `runc create` exiting and its adoption, is closed by
``holding_strays()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from extsvc.executor.process import spawn
from extsvc.executor.process.spawn import DEVNULL


def exit_code(result: os.waitid_result) -> int:
    """The shell's convention: the exit status, or 128+N for a process killed by signal N."""
    if result.si_code == os.CLD_EXITED:
        return result.si_status
    return 128 + result.si_status


class Child:
    """A process whose exit status only this object reads; ``exited`` is its exit code."""

    def __init__(self, pid: int, pidfd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = pid
        self._pidfd = pidfd
        self._loop = loop
        self.exited: asyncio.Future[int] = loop.create_future()
        loop.add_reader(pidfd, self._on_readable)
        self._on_readable()  # it may have ended before we watched it (an adopted zombie)

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    def _on_readable(self) -> None:
        try:
            result = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            # Not (or no longer) our child: its status is not ours to know.
            self._finish(None)
            return
        if result is not None:
            self._finish(exit_code(result))

    def _finish(self, code: int | None) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if not self.exited.done():
            if code is None:
                self.exited.set_exception(ChildProcessError(f"PID {self.pid} is not our child"))
            else:
                self.exited.set_result(code)

    def send_signal(self, signum: int) -> None:
        """Signal this very process (through its pidfd: never a recycled PID)."""
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def kill_group(self) -> None:
        """SIGKILL the process group this child leads (every spawned child has its own session).

        Only while it is not reaped: until then its PID, and so the group's id, is
        not reused. The leader itself is signalled through its pidfd as well.
        """
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Stop watching (the loop is closing); the status, if any, is then a stray's."""
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


class Children:
    """Every child of the executor on one event loop: spawned, adopted, or stray."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._owned: dict[int, Child] = {}
        self._holds = 0
        self._strays_pending = False

    def install(self) -> None:
        """Reap strays after SIGCHLD (only the daemon, a subreaper, gets any)."""
        self._loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
        # A burst of exits can fill asyncio's wakeup socket: a wakeup is pending then, and
        # one SIGCHLD is enough to reap every stray; no "Exception ignored" noise on stderr.
        wakeup_fd = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)

    def uninstall(self) -> None:
        self._loop.remove_signal_handler(signal.SIGCHLD)

    def spawn(
        self,
        argv: Sequence[str],
        stdin: int = DEVNULL,
        stdout: int = DEVNULL,
        stderr: int = DEVNULL,
    ) -> Child:
        """Spawn ``argv`` (executor.process.spawn: its own session) and own its exit status."""
        pid, pidfd = spawn.spawn(argv, stdin, stdout, stderr)
        return self._own(pid, pidfd)

    def adopt_spawned(self, pid: int, pidfd: int) -> Child:
        """Own a child spawned before the loop existed (executor.daemon.startup), by its pidfd."""
        return self._own(pid, pidfd)

    def adopt(self, pid: int) -> Child:
        """Take over a process that became our child (a container's init after `runc create`)."""
        return self._own(pid)

    def _own(self, pid: int, pidfd: int | None = None) -> Child:
        if pidfd is None:
            pidfd = os.pidfd_open(pid)
        child = Child(pid, pidfd, self._loop)
        if not child.exited.done():
            self._owned[pid] = child
            child.exited.add_done_callback(lambda _: self._owned.pop(pid, None))
        return child

    async def reaped(self, pidfds: Mapping[int, int], timeout: float) -> set[int]:
        """Wait until each process (PID: its pidfd, left open) has ended and, if it is our
        child, been reaped: by its owner if it has one, here if it is a stray. An ended
        process still counts in its cgroup until it is reaped. Returns the PIDs that
        had not by ``timeout``."""
        waiting = set(pidfds)
        all_done: asyncio.Future[None] = self._loop.create_future()

        def done(pid: int) -> None:
            waiting.discard(pid)
            if not waiting and not all_done.done():
                all_done.set_result(None)

        def readable(pid: int) -> None:
            self._loop.remove_reader(pidfds[pid])
            # A stray's status: nobody waits for it. Not our child: its parent's to read.
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PIDFD, pidfds[pid], os.WEXITED | os.WNOHANG)
            done(pid)

        watched = []
        for pid, pidfd in pidfds.items():
            owner = self._owned.get(pid)
            if owner is not None:
                owner.exited.add_done_callback(lambda _, pid=pid: done(pid))  # type: ignore[misc]
            else:
                self._loop.add_reader(pidfd, readable, pid)
                watched.append(pidfd)
        try:
            if waiting:
                await asyncio.wait_for(all_done, timeout)
        except TimeoutError:
            pass
        finally:
            for pidfd in watched:
                self._loop.remove_reader(pidfd)
        return set(waiting)

    @contextlib.contextmanager
    def holding_strays(self) -> Iterator[None]:
        """No stray reaping inside: a process about to be adopted is not a stray."""
        self.hold_strays()
        try:
            yield
        finally:
            self.release_strays()

    def hold_strays(self) -> None:
        """Until the matching release: a process about to be adopted is not a stray."""
        self._holds += 1

    def release_strays(self) -> None:
        self._holds -= 1
        if self._holds == 0 and self._strays_pending:
            self._strays_pending = False
            self._loop.call_soon(self.reap_strays)

    def _on_sigchld(self) -> None:
        if self._holds:
            self._strays_pending = True
        else:
            self.reap_strays()

    def reap_strays(self) -> list[int]:
        """Reap every ended child that nobody waits for; returns their PIDs."""
        if self._holds:
            self._strays_pending = True
            return []
        reaped = []
        for pid in child_pids():
            if pid in self._owned:
                continue
            with contextlib.suppress(ChildProcessError):
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG) is not None:
                    reaped.append(pid)
        return reaped


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Children] = (
    weakref.WeakKeyDictionary()
)


def children() -> Children:
    """The running loop's Children (one per loop: they watch pidfds on it)."""
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = Children(loop)
    return found


def child_pids() -> list[int]:
    """Our children, from /proc/self/task/*/children (no scan of every process)."""
    pids: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for task in tasks:
        with contextlib.suppress(OSError):
            pids.extend(
                int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split()
            )
    return pids
