"""The daemon's signals, blocked from the first instruction of `extsvc run`.

SIGTERM and SIGINT stop every service gracefully, SIGHUP reloads the plan, SIGUSR1
prints what every task of the event loop is waiting for. Until
the event loop's handlers exist (executor.daemon.main), a default disposition would
kill the executor half-started and leave containers unsupervised, so the CLI
blocks them first; the kernel keeps one pending and delivers it on unblock.
A blocked mask is inherited by children: it is lifted before any is started.

Once the loop runs, ``Signals`` handles them: the first stop signal stops every
service, the second says what the stop waits for (``stop_signal_reply``), the third
kills at once. Importable without asyncio: the CLI blocks the signals before the
head start.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from extsvc.executor.supervise.supervisor import Supervisor

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


class Signals:
    """The loop's handlers for the daemon's signals; unblocks them once installed.

    SIGTERM and SIGINT count together, as docker's daemon counts them: the first
    stops every service gracefully (``stop``), the second makes ``on_repeat`` say
    what the stop waits for, the third and any later one ask ``on_repeat`` to kill
    at once (a terminal's Ctrl-C pressed again and again).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_reload: Callable[[], None],
        on_dump: Callable[[str], None],
    ) -> None:
        import asyncio  # the daemon's, once the loop runs (this module is on the cold path)

        self.loop = loop
        self.stop = asyncio.Event()
        self.count = 0
        # Told the count of each stop signal after the first (set once there is something
        # to report on or to kill).
        self.on_repeat: Callable[[int], None] = lambda count: None
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._stop_signal)
        loop.add_signal_handler(RELOAD_SIGNAL, on_reload)
        loop.add_signal_handler(DUMP_SIGNAL, lambda: on_dump(task_stacks()))
        unblock()

    def _stop_signal(self) -> None:
        self.count += 1
        if self.count == 1:
            self.stop.set()
        else:
            self.on_repeat(self.count)

    def remove(self) -> None:
        for signum in HANDLED_SIGNALS:
            self.loop.remove_signal_handler(signum)


def stop_signal_reply(
    count: int, supervisor: Supervisor, ends_in: float, notice: Callable[[str], None]
) -> None:
    """The second stop signal says what the stop waits for; the third kills at once."""
    from extsvc.compiler.format.durations import format_duration  # not on the cold path

    waiting = supervisor.stop_status()
    limit = f"at most {format_duration(max(ends_in, 0.0))} more"
    if not waiting:
        notice(f"stopping: every service has stopped, finishing ({limit})")
        return
    if count >= 3 and not supervisor.killing:
        supervisor.kill_now()
        notice(
            f"killing {len(waiting)} service(s) at once (SIGKILL), then removing their "
            "containers, mounts and cgroups"
        )
        return
    notice(f"stopping: waiting for {len(waiting)} service(s), {limit}:")
    for line in waiting:
        notice(f"  {line}")
    if count < 3:
        notice("press Ctrl-C (or send SIGINT/SIGTERM) once more to kill them at once")


def task_stacks() -> str:
    """Every task of the running loop and where it waits (SIGUSR1): the chain of
    coroutines it is suspended in, outermost first, then what the innermost awaits
    (Task.print_stack shows a suspended coroutine's outermost frame only)."""
    import asyncio

    tasks = sorted(asyncio.all_tasks(), key=lambda task: task.get_name())
    lines = [f"SIGUSR1: {len(tasks)} task(s)"]
    for task in tasks:
        lines.append(f"task {task.get_name()!r}:")
        awaited: Any = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:  # a future, or a coroutine object without a frame
                lines.append(f"    awaiting {awaited!r}"[:300])
                break
            code = frame.f_code
            lines.append(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)
