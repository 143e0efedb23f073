"""Child subreaper duties: whatever is orphaned below us is re-parented to us; reap it.

As a subreaper, a process that loses its parent below the executor (a `runc run`
that died, a helper that daemonised) becomes our child instead of init's, so
nothing escapes supervision; the strays are reaped here so no zombie is left.
asyncio reaps the processes it spawned itself, promptly on exit, so strays are
collected a moment after SIGCHLD rather than racing asyncio for its own children.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

import psutil

PR_SET_CHILD_SUBREAPER = 36
STRAY_REAP_DELAY = 1.0


def become_subreaper() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(code)}")


def use_pidfd_child_watcher(loop: asyncio.AbstractEventLoop) -> None:
    """Make asyncio wait for its children with pidfds: no watcher thread, no SIGCHLD use."""
    if sys.version_info < (3, 12):  # 3.12+ picks pidfds by itself
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)


class Reaper:
    def __init__(self) -> None:
        self._scheduled = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld, loop)

    def _on_sigchld(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop.call_later(STRAY_REAP_DELAY, self.reap_strays)

    def reap_strays(self) -> list[int]:
        """waitpid every zombie child that nobody else has waited for."""
        self._scheduled = False
        reaped = []
        for pid in _zombie_children():
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
        return reaped


def _zombie_children() -> list[int]:
    zombies = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.append(child.pid)
    return zombies
