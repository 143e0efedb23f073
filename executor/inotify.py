"""Wait for a file to appear without polling: inotify(7) on its directory, in the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
from functools import cache
from pathlib import Path

IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class FileWatch:
    """Set up *before* the file can appear; ``appeared`` resolves once it exists."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loop = asyncio.get_running_loop()
        self.appeared: asyncio.Future[None] = self._loop.create_future()
        self._fd = _libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        if _libc().inotify_add_watch(self._fd, str(path.parent).encode(), mask) < 0:
            code = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(code, f"inotify_add_watch {path.parent}: {os.strerror(code)}")
        self._loop.add_reader(self._fd, self._on_event)
        self._on_event()  # it may already be there

    def _on_event(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 64 * 1024)  # drain; which entry changed does not matter
        if self.path.exists() and not self.appeared.done():
            self.appeared.set_result(None)
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
