"""The real executor (`extsvc run`, real runc) with its wall clock stepped a year.
Needs root, runc and Debian's libfaketime.

The host clock is shared (and other suites run alongside), so the step is the executor's
alone: libfaketime, preloaded into the daemon, adds the offset written in a file to every
CLOCK_REALTIME read the process makes (Python's ``time.time``, ``datetime``, C
libraries alike), re-read at each call (``FAKETIME_NO_CACHE``), and leaves
CLOCK_MONOTONIC to the kernel (``FAKETIME_DONT_FAKE_MONOTONIC``), as a real step by time
sync does. No hook in the product: whatever reads the wall clock sees the step.
"""

from __future__ import annotations

import glob
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.executor.fakes import gaps
from tests.executor.faults import FaultyRuntime
from tests.executor.realrunc import (
    IDLE,
    Daemon,
    compile_plan,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)
from tests.support.ci import cannot_run

pytestmark = pytest.mark.runc

YEAR = 365 * 24 * 3600.0


class SteppedWallClock:
    """The environment that puts a daemon on a wall clock this test steps."""

    def __init__(self, tmp: Path) -> None:
        found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
        if not found:
            cannot_run("libfaketime is not installed (apt-get install faketime)")
        self.file = tmp / "faketime"
        self.file.write_text("+0\n")
        self.env = {
            "LD_PRELOAD": found[0],
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def step(self, daemon: Daemon, days: int) -> None:
        """Step the daemon's wall clock to ``days`` from the real one; returns once the
        daemon's own answers carry the stepped time (the step is in effect)."""
        self.file.write_text(f"{days:+d}d\n")

        def daemon_says() -> bool:
            now = daemon.client.request({"op": "services"})["now"]
            offset = datetime.fromisoformat(now).timestamp() - time.time()
            return abs(offset - days * 86400) < 600

        wait_for(daemon_says, 10, f"the daemon's clock to read {days:+d} days")


def test_a_start_timeout_outlives_a_step_of_a_year_forward(tmp_path: Path) -> None:
    name = unique("late")
    flag = tmp_path / "flag"
    service = shell_service(
        name, IDLE, depends=[{"path": str(flag)}], extsvc={"startTimeout": "30s"}
    )
    out, _ = compile_plan(tmp_path, {name: service})
    clock = SteppedWallClock(tmp_path)
    with running_daemon(tmp_path, out, [name], env=clock.env) as daemon:
        service_id = f"ext-{name}"
        daemon.wait_state(service_id, "Waiting")
        clock.step(daemon, 365)
        # The path is checked every 200 ms (--check-interval): ten checks after the step.
        time.sleep(2)
        assert daemon.state(service_id) == "Waiting"
        flag.touch()
        running = daemon.wait_state(service_id, "Running")
        # Its events are labelled with the stepped clock: what the host said then.
        started = running["events"][0]
        assert started["message"].startswith("Started task")
        assert datetime.fromisoformat(started["time"]).timestamp() > time.time() + YEAR / 2
        assert daemon.stop() == 0


def test_a_crash_loop_keeps_its_interval_after_a_step_of_a_year_back(tmp_path: Path) -> None:
    name = unique("crash")
    runtime = FaultyRuntime(tmp_path)
    out, _ = compile_plan(tmp_path, {name: shell_service(name, "echo crashed; exit 1")})
    clock = SteppedWallClock(tmp_path)
    extra = ("--runtime", str(runtime.path), "--restart-interval", "1s")
    with running_daemon(tmp_path, out, [name], *extra, env=clock.env) as daemon:
        service_id = f"ext-{name}"
        wait_for(lambda: daemon.service(service_id)["runs"] >= 2, 20, "two runs")
        # The next restart's container is created during its delay: hold that create,
        # step the clock while the executor waits in it, let it go.
        runtime.pause("create")
        wait_for(lambda: runtime.paused_pid("create") is not None, 20, "the next create")
        clock.step(daemon, -365)
        before = len(starts(runtime))
        runtime.release("create")
        wait_for(lambda: len(starts(runtime)) >= before + 4, 40, "four more runs")
        # Each start is at least the interval after the run before ended (kernel
        # spawn times, unaffected by the step; 10 ms clock ticks).
        for gap in gaps(starts(runtime)[before - 1 :]):
            assert gap >= 1.0 - 0.02
        assert daemon.state(service_id) in ("Waiting", "Preparing", "Running")
        assert daemon.stop() == 0


def starts(runtime: FaultyRuntime) -> list[float]:
    return [at for sub, at in runtime.calls() if sub == "start"]
