"""Changes in one directory, without polling: inotify(7) on the event loop.

`--config-dir` is watched this way: a document written, moved in or out, or
removed wakes the executor at once, and it costs nothing while nothing changes.
The directory may not exist yet, or be removed and made again: its parent is
watched for that (an entry of that name appearing or going).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
from collections.abc import Callable
from pathlib import Path

IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
# A file's content is complete when it is closed after writing (not at IN_CREATE, when
# it is still empty), or when it is renamed into place (how editors save).
FILE_EVENTS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
ENTRY_EVENTS = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def _libc() -> ctypes.CDLL:
    # The libc already loaded: no ctypes.util.find_library (it spawns ldconfig).
    return ctypes.CDLL(None, use_errno=True)


def _error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call}: {os.strerror(code)}")


class DirectoryWatch:
    """Calls ``on_change()`` (on the loop) after a change in ``directory``; ``close()`` ends it.

    Raises OSError when inotify cannot be used (no more instances, or the
    directory's parent does not exist).
    """

    def __init__(self, directory: Path, on_change: Callable[[], None]) -> None:
        self.directory = directory
        self._on_change = on_change
        self._loop = asyncio.get_running_loop()
        self._libc = _libc()
        self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise _error("inotify_init1")
        self._name = os.fsencode(directory.name)
        self._parent = self._add(directory.parent, ENTRY_EVENTS)
        if self._parent < 0:
            error = _error(f"inotify_add_watch {directory.parent}")
            os.close(self._fd)
            raise error
        self._watched = self._add(directory, FILE_EVENTS)  # -1 while it does not exist
        self._loop.add_reader(self._fd, self._on_readable)

    def _add(self, path: Path, mask: int) -> int:
        return int(self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask | IN_ONLYDIR))

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        changed = False
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                changed = True  # events were lost: anything may have changed
            elif wd == self._parent and name == self._name:
                changed = True  # the directory itself appeared or went
            elif wd == self._watched:
                changed = True
                if mask & IN_IGNORED:
                    self._watched = -1  # it was removed (it may be back already: added below)
        if changed:
            if self._watched < 0:
                self._watched = self._add(self.directory, FILE_EVENTS)
            self._on_change()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
