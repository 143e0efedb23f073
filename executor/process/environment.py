"""The environment the executor was given, and the one every child of it gets.

Given: a service manager (systemd, or anything speaking its protocols) hands the
executor its channels in variables meant for the executor alone: ``NOTIFY_SOCKET``
(sd_notify), ``WATCHDOG_USEC`` / ``WATCHDOG_PID`` (the watchdog), ``LISTEN_PID`` /
``LISTEN_FDS`` / ``LISTEN_FDNAMES`` (socket activation). ``ServiceManager.take`` reads
them once, at the very start of `extsvc run` (before any child is spawned, the head
start included), and removes them from ``os.environ``, as ``sd_notify(3)``'s
``unset_environment`` does: nothing the executor runs can answer for it.

Gives: every process the executor spawns (runc create/start/exec/delete/list,
readiness commands of host services) gets ``CHILD_ENVIRONMENT`` and nothing of the
executor's own environment. That environment is whatever started the executor (an
init, systemd, a shell under sudo): passed on, it changes what the children do
depending on how the executor was started. `runc create` under a ``NOTIFY_SOCKET``
adds its own notify socket to the container (a mount and a variable its spec does
not have) and `runc start` then waits for the container to send ``READY=1``, which a
service that does not speak sd_notify never does. So the children's environment is
a constant, built like systemd builds a unit's (``src/core/execute.c``):

- ``PATH``: systemd's default for services. runc needs none (every input is a flag
  or the bundle); a readiness command names a host program (``getent``,
  ``systemctl``) and is looked up in this PATH, never the executor's.
- nothing else. No locale variable: programs run in the C locale, as Talos's
  services do; runc's messages are English either way and the executor reads child
  output as bytes (``runc list``'s JSON, runc's error lines passed on as they are).
  No ``TZ``, ``HOME``, ``JOURNAL_STREAM`` or ``INVOCATION_ID``: the children's stderr
  is a pipe of the executor's, not the executor's journal stream, and nothing they
  run depends on the rest.

A container's own environment is exactly its spec's ``process.env``: runc gives the
container's init that list and nothing of its own environment, and `runc exec` (a
health check) runs its command with the same list (runc reads it from the bundle's
config.json), unless told otherwise with ``--env``, which the executor never passes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import MappingProxyType

# systemd's default PATH for system services (with /sbin and /bin for hosts whose /usr
# is not merged).
CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHILD_ENVIRONMENT: Mapping[str, str] = MappingProxyType({"PATH": CHILD_PATH})

# What a service manager sets for its main process alone.
SERVICE_MANAGER_VARIABLES = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
)
# sd_listen_fds(3): the first passed file descriptor.
LISTEN_FDS_START = 3


@dataclass(frozen=True)
class ServiceManager:
    """The channels the service manager that started the executor gave it."""

    # sd_notify's socket (an "@name" is abstract); None: nobody to notify.
    notify_socket: str | None = None
    # The watchdog interval, when it is meant for this process; None: no watchdog.
    watchdog_usec: int | None = None

    @classmethod
    def take(cls, environ: MutableMapping[str, str] | None = None) -> ServiceManager:
        """Read the service manager's variables and remove them from ``environ``
        (``os.environ``: the executor's own). Sockets passed for activation are not
        used: they are kept from every child (close-on-exec), as sd_listen_fds does."""
        environ = os.environ if environ is None else environ
        given = {name: environ.pop(name) for name in SERVICE_MANAGER_VARIABLES if name in environ}
        if _for_this_process(given.get("LISTEN_PID")):
            _close_on_exec(given.get("LISTEN_FDS"))
        watchdog = None
        if _for_this_process(given.get("WATCHDOG_PID"), unset_means_us=True):
            watchdog = _positive(given.get("WATCHDOG_USEC"))
        return cls(notify_socket=given.get("NOTIFY_SOCKET") or None, watchdog_usec=watchdog)


def _for_this_process(pid: str | None, unset_means_us: bool = False) -> bool:
    """Whether a ``*_PID`` variable names this process (systemd sets them for the main
    process; a child that inherited them must ignore them)."""
    if pid is None:
        return unset_means_us
    return pid == str(os.getpid())


def _positive(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if value > 0 else None


def _close_on_exec(count: str | None) -> None:
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + (_positive(count) or 0)):
        with contextlib.suppress(OSError):
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
