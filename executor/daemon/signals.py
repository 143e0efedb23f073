"""The daemon's signals, blocked from the first instruction of `extsvc run`.

SIGTERM and SIGINT stop every service gracefully, SIGHUP reloads the plan, SIGUSR1
prints what every task of the event loop is waiting for. Until
the event loop's handlers exist (executor.daemon.main), a default disposition would
kill the executor half-started and leave containers unsupervised, so the CLI
blocks them first; the kernel keeps one pending and delivers it on unblock.
A blocked mask is inherited by children: it is lifted before any is started.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP
# Every task's stack on the event output (as Go's SIGQUIT): what a daemon that seems stuck
# is waiting for, without stopping it.
DUMP_SIGNAL = signal.SIGUSR1
HANDLED_SIGNALS = frozenset({*STOP_SIGNALS, RELOAD_SIGNAL, DUMP_SIGNAL})


def block() -> set[int | signal.Signals]:
    """Block the daemon's signals; returns the mask as it was (for ``restore``)."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)


def restore(mask: set[int | signal.Signals]) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
