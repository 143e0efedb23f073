"""How late the event loop runs, measured from inside: executor.daemon.loopstats, the status
JSON's ``loop`` and `extsvc service --debug`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.executor.daemon.control import ControlClient
from extsvc.executor.daemon.loopstats import LoopStats
from tests.executor.realrunc import check_shape
from tests.executor.world import with_server


def test_a_busy_turn_and_a_late_timer_are_measured() -> None:
    told: list[float] = []

    async def scenario() -> dict[str, Any]:
        stats = LoopStats.install(asyncio.get_running_loop())
        stats.on_timer_late = told.append  # the metrics' extsvc_event_loop_lag_seconds
        loop = asyncio.get_running_loop()
        blocked = asyncio.Event()

        def block() -> None:
            time.sleep(0.08)  # a callback that holds the loop (as a burst of output does)
            blocked.set()

        loop.call_soon(block)
        await blocked.wait()
        await asyncio.sleep(0.05)
        return stats.summary()

    summary = asyncio.run(scenario())
    assert summary["measured"] is True
    assert summary["batchSeconds"]["max"] >= 0.08
    assert summary["timerLateSeconds"] is not None
    assert told and all(late >= 0 for late in told)
    assert 0 < summary["busy"] <= 1
    check_shape(summary, "loop")


def test_an_idle_loop_is_not_woken() -> None:
    async def scenario() -> tuple[int, int]:
        stats = LoopStats.install(asyncio.get_running_loop())
        await asyncio.sleep(0)
        before = len(stats.batches)
        switches = _voluntary_switches()
        await asyncio.sleep(1.0)  # one timer: one wait, one wake-up, nothing else
        return len(stats.batches) - before, _voluntary_switches() - switches

    turns, switches = asyncio.run(scenario())
    assert turns <= 2
    assert switches <= 3


def _voluntary_switches() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/self/status")


def test_a_request_is_timed_and_the_status_carries_the_loop(tmp_path: Path) -> None:
    def body(client: ControlClient) -> tuple[dict[str, Any], dict[str, float], Any]:
        marks: dict[str, float] = {}
        response = client.request({"op": "services"}, marks)
        printed = CliRunner().invoke(
            cli, ["service", "--state-dir", str(tmp_path), "--debug", "-o", "json"]
        )
        return response, marks, printed

    response, marks, printed = asyncio.run(with_server(tmp_path, body, measured=True))
    timing = response["timing"]
    assert 0 <= timing["queuedSeconds"] <= marks["answered"] - marks["sent"]
    assert timing["handledSeconds"] >= 0
    assert response["loop"]["measured"] is True
    assert printed.exit_code == 0, printed.output
    shown = json.loads(printed.stdout)
    check_shape(shown, "services")
    assert shown["loop"]["measured"] is True
    debug = printed.stderr.splitlines()
    for leg in (
        "start-up (interpreter, imports)",
        "in the executor: before it read the request",
        "in the executor: handling it",
        "the answer's way back",
    ):
        assert any(line.startswith(f"debug: {leg}") and line.endswith(" ms") for line in debug)
    assert any(line.startswith("debug: executor loop, last ") for line in debug)


def test_a_status_request_is_answered_in_the_turn_that_accepts_it(tmp_path: Path) -> None:
    """Under load each turn of the loop is long (a burst of output, a CPU shared with
    many): a status request must not wait for several of them. Here every turn takes
    TURN seconds; the answer comes within two turns (asyncio's own server took eight)."""
    turn = 0.25

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        busy = [True]

        def slow_turn() -> None:
            time.sleep(turn)  # holds the loop, as a turn under load does
            if busy[0]:
                loop.call_soon(slow_turn)

        def body(client: ControlClient) -> float:
            loop.call_soon_threadsafe(slow_turn)
            time.sleep(turn / 2)  # the loop is in the middle of a slow turn
            began = time.monotonic()
            client.request({"op": "services"})
            took = time.monotonic() - began
            busy[0] = False
            return took

        return await with_server(tmp_path, body)  # type: ignore[no-any-return]

    assert asyncio.run(scenario()) < 2.5 * turn
