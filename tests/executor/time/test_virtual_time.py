"""The virtual clock and the scripted runtime (extsvc.executor.simulate) that `plan --simulate`
and the policy tests run on: time moves only when told or when the loop would sleep, in
deadline order, the same way on every run; a script is used up by the run it describes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from extsvc.executor.errors import LaunchError
from extsvc.executor.simulate.clock import VirtualClock, VirtualTimeLoop, settle
from extsvc.executor.simulate.runtime import Script, ScriptedRuntime
from tests.executor.fakes import make_service

WEEK = 7 * 24 * 3600.0


def on_virtual_time(clock: VirtualClock, main: Coroutine[Any, Any, Any]) -> Any:
    loop = VirtualTimeLoop(clock)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def test_the_loop_moves_the_clock_to_each_deadline_in_order_without_waiting() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def timed_out() -> None:
        # asyncio's own timers run on the same virtual time (a health check's wait_for).
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(clock.sleep(WEEK), 4)
        woke.append(("wait_for", asyncio.get_running_loop().time()))

    async def main() -> None:
        await asyncio.gather(
            sleeper("b", 5),
            sleeper("a", 3),
            sleeper("c", 5),  # due with b: wakes after it, as it went to sleep after it
            timed_out(),
            sleeper("week", WEEK),
        )

    began = time.monotonic()
    on_virtual_time(clock, main())

    assert woke == [("a", 3.0), ("wait_for", 4.0), ("b", 5.0), ("c", 5.0), ("week", WEEK)]
    assert clock.monotonic() == WEEK
    assert time.monotonic() - began < 5  # a simulated week, not a real one


def test_a_loop_with_nothing_left_to_wake_stops_instead_of_hanging() -> None:
    async def forever() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        on_virtual_time(VirtualClock(), forever())


def test_advance_wakes_what_falls_due_meanwhile_and_ends_at_the_target() -> None:
    async def main() -> None:
        clock = VirtualClock(1000.0, wall=1_700_000_000.0)
        ticks: list[float] = []

        async def every_two_seconds() -> None:
            while True:
                await clock.sleep(2)
                ticks.append(clock.monotonic())

        task = asyncio.create_task(every_two_seconds())
        await clock.advance(7)
        assert ticks == [1002.0, 1004.0, 1006.0]
        assert clock.monotonic() == 1007.0
        clock.step_wall(-3600)  # time sync: only the wall clock moves
        clock.suspended = 60.0  # a minute in suspend: only boottime counts it
        assert (clock.monotonic(), clock.boottime(), clock.wall()) == (
            1007.0,
            1067.0,
            1_700_000_007.0 - 3600,
        )
        await clock.advance(1)
        assert ticks == [1002.0, 1004.0, 1006.0, 1008.0]
        task.cancel()
        await settle()

    asyncio.run(main())


def test_a_script_is_used_up_by_its_start_not_by_a_discarded_create() -> None:
    """What the facts file's "run N" means: a container created ahead and removed unstarted
    was no run; a create that fails was one."""

    async def main() -> None:
        clock = VirtualClock()
        service = make_service("a")
        runtime = ScriptedRuntime(
            clock,
            {"ext-a": [Script(launch_error="no rootfs"), Script(1), Script(2), Script(3)]},
            last_pid=1000,
        )

        def nothing(line: bytes, read_at: float, partial: bool = False) -> None:
            pass

        with pytest.raises(LaunchError, match="no rootfs"):
            await runtime.create(service, {}, nothing)
        discarded = await runtime.create(service, {}, nothing)
        await runtime.cleanup(service)
        assert await discarded.wait() == 137
        exits = []
        for _ in range(3):
            container = await runtime.create(service, {}, nothing)
            await runtime.start(container)
            exits.append(await container.wait())
            await runtime.cleanup(service)
        assert exits == [1, 2, 3]
        last = await runtime.create(service, {}, nothing)
        await runtime.start(last)
        assert await last.wait() == 3  # the last script repeats
        assert [c.pid for c in runtime.containers] == [1001, 1002, 1003, 1004, 1005]
        assert runtime.created("ext-a") == 6 and runtime.launched("ext-a") == 4

    asyncio.run(main())
