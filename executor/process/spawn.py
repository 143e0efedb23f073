"""Starting processes the executor's way, without an event loop.

Every helper (runc, readiness commands) gets the environment built for children
(executor.process.environment), never the executor's own; a command named without a slash is
looked up in that environment's PATH. Every helper and every container runs in its own
session, out of the terminal's foreground process group: a Ctrl-C reaches the
executor alone, which stops the containers gracefully. It starts with the default
action for the signals Python ignores and an empty signal mask (the CLI blocks the
daemon's signals until the loop handles them: executor.daemon.signals).

Loop-free so that the start-up path (executor.daemon.startup) can spawn the first
`runc create`s before asyncio is even imported; executor.process.reaper watches them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
from collections.abc import Sequence

from extsvc.executor.process.environment import CHILD_ENVIRONMENT, CHILD_PATH

PR_SET_CHILD_SUBREAPER = 36
# Python ignores SIGPIPE and SIGXFSZ; a child must start with the default action, as
# subprocess's restore_signals does.
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
DEVNULL = -1


def become_subreaper() -> None:
    """Orphans (a container's init once `runc create` exits) become our children."""
    # ctypes.CDLL(None): the libc already loaded, no ctypes.util.find_library (spawns ldconfig).
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(code)}")


def spawn(
    argv: Sequence[str],
    stdin: int = DEVNULL,
    stdout: int = DEVNULL,
    stderr: int = DEVNULL,
) -> tuple[int, int]:
    """posix_spawn ``argv`` (looked up in CHILD_PATH) with CHILD_ENVIRONMENT and these fds
    as 0, 1, 2 (DEVNULL: /dev/null). A program not found raises FileNotFoundError.

    Returns its PID and a pidfd: whoever waits for it uses the pidfd, never the PID
    (executor.process.reaper: one owner of every exit status).
    """
    program = _find(argv[0])
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, null if fd == DEVNULL else fd, target)
            for target, fd in enumerate((stdin, stdout, stderr))
        ]
        pid = os.posix_spawn(
            program,
            list(argv),
            CHILD_ENVIRONMENT,
            file_actions=actions,
            setsigdef=RESTORED_SIGNALS,
            setsigmask=(),
            setsid=True,
        )
    finally:
        os.close(null)
    # Unreaped, the PID cannot be reused: the pidfd is certainly this process's.
    return pid, os.pidfd_open(pid)


def _find(command: str) -> str:
    """``command``'s path: as given when it has a slash, else found in the children's PATH
    (posix_spawnp would search the executor's own)."""
    if "/" in command:
        return command
    found = shutil.which(command, path=CHILD_PATH)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)
    return found
