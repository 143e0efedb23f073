"""Soak: 50 services for --minutes, the executor's health at start and end.

    sudo .venv/bin/python bench/soak.py [--minutes 10] [--services 50]

Needs root, runc and busybox-static; not run in CI. The plan mixes, in turn:
crash loops (exit 1 at once, restart: always), log floods (lines as fast as the
shell writes them, through rotation), long lines (60 KB each), console output
(logToConsole, the executor's stdout a pipe that is read slowly), health checks
(x-extsvc health, every 1 s, one in three failing), dependents of the above, and
quiet services. Meanwhile a `logs -f` client that never reads stays connected,
and `extsvc reload` runs every 30 s (the plan recompiled with one service changed).

Printed over the first minute and the last minute: the executor's RSS, open fds,
CPU (% of one core), and the round trip of a `services` request on the control
socket every 100 ms, split into its legs: before the executor read it (accept,
the loop's turns ahead of it, the executor waiting for a CPU), handling it, and
the answer's way back (the prober waiting for a CPU); beside it the executor's
own view of its loop (executor.daemon.loopstats: longest turns, fraction of the time
it waited for a CPU). And the cost of the command a user runs: `extsvc service`
against ``python -c "import click"``, alternated every few seconds (the ratio
that bench/control_bench.py measures on a quiet host), with `--debug`'s legs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from bench.control_bench import ENVIRONMENT  # noqa: E402
from extsvc.executor.daemon.control import ControlClient  # noqa: E402
from tests.executor.realrunc import remove_traces, shell_service, wait_for  # noqa: E402
from tests.support.rootfs import make_busybox_rootfs  # noqa: E402

EXTSVC = [sys.executable, "-m", "extsvc"]
# cgroup v1's cpu hierarchy, as Debian mounts it; the largest weight v1 takes.
CPU_HIERARCHIES = (Path("/sys/fs/cgroup/cpu,cpuacct"), Path("/sys/fs/cgroup/cpu"))
MAX_CPU_SHARES = 262144
IDLE = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"
KINDS = ["crash", "flood", "long", "console", "health", "dependent", "quiet"]


def service_yaml(kind: str, name: str, index: int, previous: str | None, version: int) -> str:
    if kind == "crash":
        return shell_service(name, f"echo 'crash {version}'; exit 1")
    if kind == "flood":
        script = 'i=0; while :; do i=$((i+1)); echo "flood $i ..........................."; done'
        return shell_service(name, script)
    if kind == "long":
        script = 'l=$(head -c 60000 /dev/zero | tr "\\0" x); while :; do echo "$l"; sleep .01; done'
        return shell_service(name, script)
    if kind == "console":
        script = 'i=0; while :; do i=$((i+1)); echo "console $i"; sleep 0.001; done'
        return shell_service(name, script, log_to_console=True)
    if kind == "health":
        check = ["/bin/sh", "-c", "exit $(( $(date +%s) % 3 == 0 ))"]
        health = {"exec": check, "interval": "1s", "timeout": "2s", "retries": 2}
        return shell_service(name, IDLE, extsvc={"health": {**health, "onUnhealthy": "restart"}})
    if kind == "dependent" and previous is not None:
        return shell_service(name, IDLE, depends=[{"service": f"ext-{previous}"}])
    return shell_service(name, IDLE)


def write_plan(tmp: Path, names: list[tuple[str, str]], version: int) -> Path:
    source = tmp / "src"
    source.mkdir(exist_ok=True)
    base = tmp / "rootfs"
    previous = None
    for index, (kind, name) in enumerate(names):
        # Each reload changes one service (round robin): reload restarts that one only.
        changed = version if index == version % len(names) else 0
        text = service_yaml(kind, name, index, previous, changed)
        (source / f"{name}.yaml").write_text(text)
        if not (base / name).exists():
            make_busybox_rootfs(base / name)
        previous = name
    out = tmp / "out"
    subprocess.run(
        [*EXTSVC, "compile", str(source), "-o", str(out), "--rootfs-base", str(base)],
        check=True,
        capture_output=True,
    )
    return out


class Probe:
    """Samples the executor: RSS, fds, CPU, control round trips."""

    def __init__(self, pid: int, client: ControlClient) -> None:
        self.process = psutil.Process(pid)
        self.client = client
        self.samples: list[tuple[float, int, int, float]] = []  # time, rss, fds, cpu seconds
        self.latencies: list[tuple[float, float]] = []
        # (time, queued, handled, way back, loop turn p99, executor's CPU wait fraction)
        self.legs: list[tuple[float, float, float, float, float, float]] = []
        self.stop = threading.Event()
        self.errors = 0
        self.last_error = ""

    def run(self) -> None:
        last_sample = 0.0
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                marks: dict[str, float] = {}
                response = self.client.request({"op": "services"}, marks)
                self.latencies.append((began, time.monotonic() - began))
                self._record_legs(began, marks, response)
            except Exception as error:
                self.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
            if began - last_sample >= 1.0:
                last_sample = began
                with contextlib.suppress(psutil.Error):
                    cpu = self.process.cpu_times()
                    self.samples.append(
                        (
                            began,
                            self.process.memory_info().rss,
                            self.process.num_fds(),
                            cpu.user + cpu.system,
                        )
                    )
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - began)))

    def _record_legs(self, began: float, marks: dict[str, float], response: Any) -> None:
        timing, loop = response.get("timing") or {}, response.get("loop") or {}
        if "queuedSeconds" not in timing:
            return
        queued, handled = timing["queuedSeconds"], timing["handledSeconds"]
        back = marks["answered"] - marks["sent"] - queued - handled
        turn = (loop.get("batchSeconds") or {}).get("p99", 0.0)
        self.legs.append((began, queued, handled, back, turn, loop.get("cpuWait") or 0.0))

    def legs_report(self, label: str, start: float, end: float) -> str:
        legs = [leg for leg in self.legs if start <= leg[0] <= end]
        if not legs:
            return f"{label}: no timed requests"
        names = ("before read", "handling", "way back", "loop turn p99", "executor CPU wait")
        parts = []
        for index, name in enumerate(names, start=1):
            values = sorted(leg[index] for leg in legs)
            p50, p90 = values[len(values) // 2], values[int(len(values) * 0.9)]
            if name == "executor CPU wait":
                parts.append(f"{name} p50 {p50 * 100:.0f}% p90 {p90 * 100:.0f}%")
            else:
                parts.append(f"{name} p50 {p50 * 1000:.1f} p90 {p90 * 1000:.1f} ms")
        return f"{label} legs: " + "; ".join(parts)

    def report(self, label: str, start: float, end: float) -> str:
        samples = [s for s in self.samples if start <= s[0] <= end]
        latencies = sorted(v for t, v in self.latencies if start <= t <= end)
        if len(samples) < 2 or not latencies:
            return f"{label}: not enough samples"
        cpu = (samples[-1][3] - samples[0][3]) / (samples[-1][0] - samples[0][0]) * 100

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

        return (
            f"{label}: RSS {statistics.median(s[1] for s in samples) / 1e6:.1f} MB "
            f"(max {max(s[1] for s in samples) / 1e6:.1f}), "
            f"fds {statistics.median(s[2] for s in samples):.0f} "
            f"(max {max(s[2] for s in samples)}), CPU {cpu:.1f}% of a core, "
            f"loop latency p50 {pct(50):.1f} ms p90 {pct(90):.1f} ms "
            f"p99 {pct(99):.1f} ms max {latencies[-1] * 1000:.1f} ms ({len(latencies)} probes)"
        )


class CommandCost:
    """`extsvc service --debug` and ``python -c "import click"``, alternated, timed."""

    def __init__(self, state: Path) -> None:
        bin_dir = Path(sys.executable).parent
        self.baseline = [str(bin_dir / "python"), "-c", "import click"]
        self.service = [str(bin_dir / "extsvc"), "service", "--state-dir", str(state), "--debug"]
        self.samples: list[tuple[float, str, float]] = []  # (time, which, seconds)
        self.debug: list[tuple[float, str]] = []  # (time, --debug's lines)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(2.0):
            for which, command in (("click", self.baseline), ("service", self.service)):
                began = time.monotonic()
                done = subprocess.run(command, capture_output=True, text=True, env=ENVIRONMENT)
                self.samples.append((began, which, time.monotonic() - began))
                if which == "service":
                    self.debug.append((began, done.stderr))

    def report(self, label: str, start: float, end: float) -> str:
        def median(which: str) -> float | None:
            values = [v for t, w, v in self.samples if w == which and start <= t <= end]
            return statistics.median(values) if values else None

        click_s, service_s = median("click"), median("service")
        if click_s is None or service_s is None:
            return f"{label}: no command timed"
        legs: dict[str, list[float]] = {}
        for at, text in self.debug:
            if start <= at <= end:
                for line in text.splitlines():
                    what, _, figure = line.removeprefix("debug: ").rpartition("  ")
                    if figure.strip().endswith(" ms"):
                        legs.setdefault(what.strip(), []).append(float(figure.split()[0]))
        shown = "; ".join(f"{k} {statistics.median(v):.0f}" for k, v in legs.items())
        return (
            f"{label}: `extsvc service` {service_s * 1000:.0f} ms, `import click` "
            f"{click_s * 1000:.0f} ms: {service_s / click_s:.2f} x (target <= 1.5 x); "
            f"--debug medians (ms): {shown}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--reload-every", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--executor-nice",
        type=int,
        default=0,
        help="run the executor at this nice value (e.g. -5: ahead of its containers)",
    )
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="run the soak (executor, containers, clients) in a cpu cgroup of the largest "
        "weight: the figures of a host of its own, on a shared one (cgroup v1)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak.py needs root (runc, mounts, cgroups)")
    tag = os.urandom(3).hex()
    names = [(KINDS[i % len(KINDS)], f"soak{tag}-{i:02d}") for i in range(args.services)]
    with contextlib.ExitStack() as stack:
        parent = stack.enter_context(isolated(tag)) if args.isolate else None
        if args.isolate:
            shown = f"cpu cgroup {parent} (cpu.shares {MAX_CPU_SHARES})" if parent else "no"
            print(f"soak: isolated from the host's other load: {shown}", flush=True)
        soak(args, tag, names, parent)


def soak(
    args: argparse.Namespace, tag: str, names: list[tuple[str, str]], parent: str | None
) -> None:
    """The soak itself; ``parent``: the cgroup the containers go in (--cgroup-parent)."""
    with tempfile.TemporaryDirectory(prefix="extsvc-soak-") as temp:
        tmp = Path(temp)
        out = write_plan(tmp, names, 0)
        state, logs = tmp / "state", tmp / "logs"
        argv = [
            *EXTSVC, "run", str(out), "--state-dir", str(state), "--log-dir", str(logs),
            "--restart-interval", "500ms", "--stop-timeout", "2s",
        ]  # fmt: skip
        if parent is not None:
            argv += ["--cgroup-parent", parent]
        # Its events and notices are kept (beside the log dir) for a failed reload to show.
        events = open(tmp / "daemon.stderr", "wb")  # noqa: SIM115 (lives as long as it)
        if args.executor_nice:
            argv = ["nice", "-n", str(args.executor_nice), *argv]
        daemon = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=events)
        client = ControlClient(state, timeout=30)
        # A slow console reader: 4 KiB every 100 ms.
        assert daemon.stdout is not None
        console = daemon.stdout

        def slow_reader() -> None:
            while console.read1(4096):  # type: ignore[attr-defined]
                time.sleep(0.1)

        threading.Thread(target=slow_reader, daemon=True).start()
        try:
            wait_for(lambda: (state / "control.sock").exists(), 60, "the control socket")
            time.sleep(1)
            stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(str(state / "control.sock"))
            long_name = next(n for k, n in names if k == "long")
            stuck.sendall(
                json.dumps({"op": "logs", "id": f"ext-{long_name}", "follow": True}).encode()
                + b"\n"
            )
            probe = Probe(daemon.pid, client)
            threading.Thread(target=probe.run, daemon=True).start()
            cost = CommandCost(state)
            threading.Thread(target=cost.run, daemon=True).start()
            began = time.monotonic()
            duration = args.minutes * 60
            reloads = 0
            slow_reloads: list[str] = []
            next_reload = began + args.reload_every
            while time.monotonic() - began < duration:
                if time.monotonic() >= next_reload:
                    reloads += 1
                    write_plan(tmp, names, reloads)
                    asked = time.monotonic()
                    try:
                        subprocess.run(
                            [*EXTSVC, "reload", "--state-dir", str(state)],
                            capture_output=True,
                            timeout=120,
                        )
                    except subprocess.TimeoutExpired:
                        daemon.send_signal(signal.SIGUSR1)  # every task's stack, on stderr
                        time.sleep(1)
                        slow_reloads.append(diagnose_reload(tmp, client, reloads))
                    took = time.monotonic() - asked
                    if took > 30:
                        print(f"soak: reload {reloads} took {took:.0f} s", flush=True)
                    next_reload = max(next_reload + args.reload_every, time.monotonic())
                time.sleep(0.5)
            probe.stop.set()
            cost.stop.set()
            end = time.monotonic()
            window = min(60.0, duration / 3)
            services = client.request({"op": "services"})["services"]
            states: dict[str, int] = {}
            for service in services:
                states[service["state"]] = states.get(service["state"], 0) + 1
            print(f"soak: {args.services} services for {args.minutes:g} min, {reloads} reloads")
            print(probe.report("first " + f"{window:.0f} s", began, began + window))
            print(probe.report("last  " + f"{window:.0f} s", end - window, end))
            for label, start, stop in (
                ("first " + f"{window:.0f} s", began, began + window),
                ("last  " + f"{window:.0f} s", end - window, end),
            ):
                print(probe.legs_report(label, start, stop))
                print(cost.report(label, start, stop))
            print(f"control requests that failed: {probe.errors} {probe.last_error}")
            print(f"reloads that did not answer within 120 s: {len(slow_reloads)}")
            for report in slow_reloads:
                print(report)
            print(f"states at the end: {states}")
            log_bytes = sum(p.stat().st_size for p in logs.iterdir())
            print(f"log dir: {log_bytes / 1e6:.1f} MB for {args.services} services")
        finally:
            asked = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(120)
                print(f"shutdown (SIGTERM -> exit {code}): {time.monotonic() - asked:.1f} s")
            except subprocess.TimeoutExpired:
                daemon.send_signal(signal.SIGUSR1)  # what it still waits for
                time.sleep(2)
                print("shutdown: no exit within 120 s of SIGTERM: killed; its last words:")
                text = (tmp / "daemon.stderr").read_bytes().decode(errors="replace")
                print("\n".join("    " + line for line in text.splitlines()[-120:]))
                daemon.kill()
            remove_traces(state, [n for _, n in names], parent or "")


@contextlib.contextmanager
def isolated(tag: str) -> Iterator[str | None]:
    """A cpu cgroup of the largest weight holding this process and so everything it
    starts (the executor, the clients, the baseline), whose path the executor is given
    as ``--cgroup-parent`` so the containers are in it too: the soak as on a host of its
    own, the other tenants of a shared machine counting for 1/256 of it each. Both
    sides of every ratio are inside. None where there is no cgroup v1 cpu hierarchy."""
    hierarchy = next((h for h in CPU_HIERARCHIES if (h / "cpu.shares").exists()), None)
    if hierarchy is None:
        yield None
        return
    group = hierarchy / f"extsvc-soak-{tag}"
    group.mkdir()
    try:
        (group / "cpu.shares").write_text(str(MAX_CPU_SHARES))
        (group / "cgroup.procs").write_text(str(os.getpid()))
        yield "/" + group.name
    finally:
        (hierarchy / "cgroup.procs").write_text(str(os.getpid()))
        # What the executor created below it is gone once it stopped; what is left is
        # empty (an ended process's cgroup), removed deepest first.
        for directory in sorted(group.glob("**/"), key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()


def diagnose_reload(tmp: Path, client: ControlClient, number: int) -> str:
    """What the executor was doing when a reload did not answer: the services that are
    not settled, and its last events."""
    lines = [f"reload {number} did not answer within 120 s"]
    try:
        services = client.request({"op": "services"})["services"]
        lines += [f"  {s['id']}: {s['state']}" for s in services if s["state"] not in ("Running",)][
            :20
        ]
    except Exception as error:  # a report, whatever went wrong
        lines.append(f"  services request failed: {error!r}")
    text = (tmp / "daemon.stderr").read_bytes().decode(errors="replace")
    dump = text.rfind("SIGUSR1:")
    lines += ["  last events:", *("    " + line for line in text[:dump].splitlines()[-20:])]
    if dump >= 0:
        lines += ["  tasks (SIGUSR1):", *("    " + line for line in text[dump:].splitlines())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
