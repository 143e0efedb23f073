"""Cutting a wait short: the asyncio helpers of a task that a stop may interrupt.

Two ways, for two kinds of wait. ``until_set`` races a wait (a container's exit, a
sleep) against events, in tasks of their own, and cancels the loser. An
interruptible call (``StopRequest.interruptible``) awaits inline and lets the stop
cancel it only there: no extra turn of the loop, so the order of events is the same
as without a stop. Either way the caller gets ``STOPPED`` instead of a result, never
a CancelledError that is not its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class Stopped:
    """The type of ``STOPPED``: a wait that a stop ended before its result came."""


STOPPED = Stopped()


async def first_of(awaitables: list[Awaitable[Any]]) -> None:
    """Return once any of ``awaitables`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def until_set(awaitable: Awaitable[T], *events: asyncio.Event) -> T | Stopped:
    """``awaitable``'s result, or STOPPED (the awaitable cancelled) if one of ``events``
    is set first."""
    work = asyncio.ensure_future(awaitable)
    interrupts = [asyncio.ensure_future(event.wait()) for event in events]
    await asyncio.wait({work, *interrupts}, return_when=asyncio.FIRST_COMPLETED)
    for interrupt in interrupts:
        interrupt.cancel()
    # Both may be over at once (a container that died at start, a wait of 0 s): the
    # event wins then, or a crash loop on a loaded host could outrun every stop.
    interrupted = any(event.is_set() for event in events)
    if work.done() and (not interrupted or work.exception() is not None):
        return work.result()
    if work.done():
        return STOPPED
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return STOPPED


class StopRequest:
    """The request to stop one task, and the waits of that task it cuts short.

    Invariant: ``request`` cancels the task only while it awaits inside
    ``interruptible``, and at most once per call; ``interruptible`` then swallows that
    cancellation (and only that one: a cancellation from anyone else propagates) and
    returns STOPPED. The awaitable's own cancellation is its cleanup (a runtime call
    kills its process and removes what it made).
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._inside = False
        self._cancelled = False

    def is_set(self) -> bool:
        return self.event.is_set()

    def request(self, task: asyncio.Task[Any] | None) -> None:
        """Stop ``task``: from now on every wait here ends STOPPED, and the interruptible
        call it is in now, if any, is cancelled."""
        self.event.set()
        if task is not None and self._inside and not self._cancelled:
            self._cancelled = True
            task.cancel()

    async def interruptible(self, awaitable: Awaitable[T]) -> T | Stopped:
        """``awaitable``'s result, or STOPPED if ``request`` cancelled it."""
        self._inside = True
        try:
            return await awaitable
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancelled or task is None:
                raise
            task.uncancel()
            return STOPPED
        finally:
            self._inside = False
            self._cancelled = False

    async def until(
        self, awaitable: Awaitable[T], also: asyncio.Event | None = None
    ) -> T | Stopped:
        """``awaitable``'s result, or STOPPED (the awaitable cancelled) if the stop (or
        ``also``) comes first."""
        events = (self.event,) if also is None else (self.event, also)
        return await until_set(awaitable, *events)
