"""Control commands' start-up cost, as ratios measured in one run.

`extsvc service` (listing 10 services of a running control server) and `extsvc
logs ID --tail 10` (a 1 MiB log) against ``python -c "import click"``: a user runs
them in loops, so each must cost at most 1.5x that baseline. The control server
is the real one (executor.daemon.control) over a supervisor with fake containers, in a
thread of this process: what is measured is the command, not a container.

Each figure is the median of several runs, the commands taking turns (baseline,
service, logs, baseline, ...), so a shared machine's load, which comes and goes,
hits both sides of a ratio alike. Run: ``make bench`` or
``.venv/bin/python bench/control_bench.py``. The same ratio under load is
measured by bench/soak.py, against the soak's own executor.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from extsvc.executor.daemon.control import SOCKET_NAME, ControlHandler, ControlServer  # noqa: E402
from extsvc.executor.logs.logfile import OUTPUT, LogRecord, encode, stamp  # noqa: E402
from extsvc.executor.simulate.runtime import ScriptedRuntime  # noqa: E402
from extsvc.executor.supervise.supervisor import Supervisor, SupervisorSettings  # noqa: E402
from tests.executor.fakes import make_clock, make_plan, make_service  # noqa: E402
from tests.executor.world import FULL_HOST, SETTINGS  # noqa: E402

BIN = Path(sys.executable).parent
SERVICES = 10
REPEAT = 21
TARGET = 1.5
# Measure extsvc as installed: byte-compiled, PYTHONDONTWRITEBYTECODE ignored (compile_bench).
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(*commands: list[str]) -> list[float]:
    """Median wall time of each command in seconds, the commands run in turn REPEAT
    times; a failure aborts the benchmark."""
    samples: list[list[float]] = [[] for _ in commands]
    for _ in range(REPEAT):
        for command, taken in zip(commands, samples, strict=True):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENVIRONMENT)
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in samples]


def serve(state: Path, logs: Path, ready: threading.Event, stop: threading.Event) -> None:
    async def main() -> None:
        clock = make_clock()
        plan = make_plan(*(make_service(f"svc-{i:02d}") for i in range(SERVICES)))
        supervisor = Supervisor(
            plan, ScriptedRuntime(clock), clock, SupervisorSettings(FULL_HOST, SETTINGS, logs)
        )
        server = ControlServer(state / SOCKET_NAME, ControlHandler(supervisor))
        await server.start()
        supervisor.start_all()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.close()
        await supervisor.shutdown()

    asyncio.run(main())


def write_log(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        written, index = 0, 0
        while written < size:
            line = encode(LogRecord(stamp(time.time()), OUTPUT, f"line {index} of a busy service"))
            handle.write(line)
            written += len(line)
            index += 1


def main() -> int:
    if os.geteuid() != 0:
        print("control_bench: needs root (extsvc service refuses to run without it)")
        return 0
    for package in ("compiler", "executor", "extsvc"):
        compileall.compile_dir(REPOSITORY / package, quiet=1)
    python, extsvc = str(BIN / "python"), str(BIN / "extsvc")
    with tempfile.TemporaryDirectory(prefix="extsvc-control-bench-") as scratch:
        state, logs = Path(scratch) / "state", Path(scratch) / "logs"
        state.mkdir()
        ready, stop = threading.Event(), threading.Event()
        server = threading.Thread(target=serve, args=(state, logs, ready, stop), daemon=True)
        server.start()
        ready.wait(30)
        write_log(logs / "ext-svc-00.log", 1024 * 1024)
        try:
            baseline, service, tail = timed(
                [python, "-c", "import click"],
                [extsvc, "service", "--state-dir", str(state)],
                [extsvc, "logs", "svc-00", "--tail", "10", "--log-dir", str(logs)],
            )
        finally:
            stop.set()
            server.join(30)
    print(f"import click                     {baseline * 1000:8.1f} ms")
    for what, seconds in (("extsvc service", service), ("extsvc logs ID --tail 10", tail)):
        ratio = seconds / baseline
        verdict = "OK" if ratio <= TARGET else "OVER"
        print(
            f"{what:<32} {seconds * 1000:8.1f} ms   {ratio:5.2f} x  (target <= {TARGET}x) {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
