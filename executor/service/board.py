"""The state board: wakes everyone waiting on "some service changed state".

Every runner notifies it on each event; whoever waits for another service (a
dependency condition, the supervisor, a configuration change) takes ``next_change``
*before* looking, so no change between the look and the wait goes unseen. No polling.
"""

from __future__ import annotations

import asyncio


class StateBoard:
    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """Set at the next change: taken *before* looking, so no change goes unseen."""
        return self._changed
