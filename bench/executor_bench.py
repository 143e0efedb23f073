"""Executor speed (issue 3, "Speed"): ratios measured in one run. Needs root, runc, busybox-static.

    .venv/bin/python bench/executor_bench.py [--repeat N]

1. Start overhead: a service's first output after the executor is asked to start it,
   against a bare `runc run` of the same (host-adapted) bundle. Target <= 1.3.
2. Parallel start: 20 independent services reach Running, against one. Target <= 1.5.
3. Idle cost with 20 running services: executor CPU < 1% and RSS < 80 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from extsvc.executor.adapt import HostFacts, adapt_spec  # noqa: E402
from extsvc.executor.control import ControlClient  # noqa: E402
from extsvc.executor.errors import DaemonUnreachableError  # noqa: E402
from tests.support.rootfs import find_static_busybox, make_busybox_rootfs  # noqa: E402

EXTSVC = [sys.executable, "-m", "extsvc"]
ONE_SHOT = "echo ready"
IDLE = "trap 'exit 0' TERM; echo ready; while :; do sleep 1 & wait $!; done"


def service_yaml(name: str, script: str, restart: str) -> str:
    document = {
        "name": name,
        "container": {"entrypoint": "/bin/sh", "args": ["-c", script]},
        "restart": restart,
    }
    return json.dumps(document)


def compile_plan(work: Path, services: dict[str, tuple[str, str]]) -> Path:
    source, out, base = work / "src", work / "out", work / "rootfs"
    source.mkdir(parents=True)
    for name, (script, restart) in services.items():
        (source / f"{name}.yaml").write_text(service_yaml(name, script, restart))
        make_busybox_rootfs(base / name)
    subprocess.run(
        [*EXTSVC, "compile", str(source), "-o", str(out), "--rootfs-base", str(base)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


class Executor:
    def __init__(self, work: Path, out: Path) -> None:
        self.state = work / "state"
        self.client = ControlClient(self.state)
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [*EXTSVC, "run", str(out), "--state-dir", str(self.state), "--log-dir",
             str(work / "logs"), "--quiet", "--stop-timeout", "2s"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client.request({"op": "services"})
                return
            except DaemonUnreachableError:
                time.sleep(0.01)
        raise RuntimeError("executor did not come up")

    def service(self, service_id: str) -> dict[str, Any]:
        return self.client.request({"op": "service", "id": service_id})["service"]  # type: ignore[no-any-return]

    def wait_state(self, service_id: str, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.service(service_id)["state"] != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service_id} never reached {state}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def first_line_after(client: ControlClient, service_id: str, trigger: Any) -> float:
    """Seconds from ``trigger()`` to the next log line of the service (followed live)."""
    stream = client.stream({"op": "logs", "id": service_id, "tail": 0, "follow": True})
    ready = threading.Event()
    seen: list[float] = []

    def read() -> None:
        for message in stream:
            if not ready.is_set():
                ready.set()  # the tail-0 answer never arrives; first real message is a line
            if message.get("stream") == "output":  # not the executor's run marker
                seen.append(time.monotonic())
                return

    # The stream only connects when iterated: connect first, then trigger.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.1)
    started = time.monotonic()
    trigger()
    reader.join(30)
    return seen[0] - started


def bare_runc_first_output(out: Path, name: str, work: Path) -> float:
    spec = json.loads((out / "bundles" / name / "config.json").read_text())
    adapted, _ = adapt_spec(spec, HostFacts.probe())
    bundle = work / "bare-bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(adapted))
    root = work / "bare-runc"
    started = time.monotonic()
    process = subprocess.Popen(
        ["runc", "--root", str(root), "run", "--bundle", str(bundle), f"bare-{name}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.monotonic() - started
    process.wait(30)
    return elapsed


def bare_parallel_first_output(count: int) -> float:
    """The host's floor: ``count`` bare `runc run`s started together, until all printed."""
    with tempfile.TemporaryDirectory(prefix="extsvc-bench-") as temporary:
        work = Path(temporary)
        names = [f"bench-bare-{index:02d}" for index in range(count)]
        out = compile_plan(work, {name: (ONE_SHOT, "never") for name in names})
        host = HostFacts.probe()
        bundles = []
        for name in names:
            spec = json.loads((out / "bundles" / name / "config.json").read_text())
            adapted, _ = adapt_spec(spec, host)
            bundle = work / "bare" / name
            bundle.mkdir(parents=True)
            (bundle / "config.json").write_text(json.dumps(adapted))
            bundles.append((name, bundle))
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                ["runc", "--root", str(work / "runc"), "run", "--bundle", str(bundle), name],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for name, bundle in bundles
        ]
        for process in processes:
            assert process.stdout is not None
            process.stdout.readline()
        elapsed = time.monotonic() - started
        for process in processes:
            process.wait(30)
        return elapsed


def bench_start_overhead(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="extsvc-bench-") as temporary:
        work = Path(temporary)
        out = compile_plan(work, {"bench-once": (ONE_SHOT, "never")})
        cold_started = time.monotonic()
        executor = Executor(work, out)
        executor.wait_state("ext-bench-once", "Finished")
        cold = time.monotonic() - cold_started
        try:
            bare, managed = [], []
            for _ in range(repeat):
                bare.append(bare_runc_first_output(out, "bench-once", work))
                managed.append(
                    first_line_after(
                        executor.client,
                        "ext-bench-once",
                        lambda: executor.client.request({"op": "start", "id": "ext-bench-once"}),
                    )
                )
                executor.wait_state("ext-bench-once", "Finished")
        finally:
            executor.stop()
    return {
        "bare_runc_run_s": statistics.median(bare),
        "executor_start_s": statistics.median(managed),
        "cold_extsvc_run_to_finished_s": cold,
    }


def _epoch(moment: str) -> float:
    """An event time (RFC 3339) as seconds since the epoch."""
    return datetime.fromisoformat(moment).timestamp()


def time_to_running(count: int) -> tuple[float, dict[str, float]]:
    """Seconds from the first Preparing event to the last service Running (event times)."""
    with tempfile.TemporaryDirectory(prefix="extsvc-bench-") as temporary:
        work = Path(temporary)
        names = [f"bench-{index:02d}" for index in range(count)]
        out = compile_plan(work, {name: (IDLE, "always") for name in names})
        executor = Executor(work, out)
        idle: dict[str, float] = {}
        try:
            for name in names:
                executor.wait_state(f"ext-{name}", "Running")
            events = [executor.service(f"ext-{name}")["events"] for name in names]
            first = min(
                _epoch(e["time"]) for history in events for e in history
                if e["state"] == "Preparing"
            )  # fmt: skip
            last = max(
                _epoch(e["time"]) for history in events for e in history if e["state"] == "Running"
            )
            if count > 1:
                process = psutil.Process(executor.process.pid)
                process.cpu_percent(None)
                time.sleep(5)
                idle = {
                    "idle_cpu_percent": process.cpu_percent(None),
                    "rss_mb": process.memory_info().rss / 1024 / 1024,
                }
        finally:
            executor.stop()
    return last - first, idle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None or find_static_busybox() is None:
        print("bench: needs root, runc and busybox-static", file=sys.stderr)
        return 3
    print(f"host: {os.cpu_count()} CPUs, {psutil.virtual_memory().total // 2**30} GiB")
    start = bench_start_overhead(args.repeat)
    ratio = start["executor_start_s"] / start["bare_runc_run_s"]
    print(
        f"start overhead: bare runc run {start['bare_runc_run_s'] * 1000:.0f} ms, executor "
        f"{start['executor_start_s'] * 1000:.0f} ms -> ratio {ratio:.2f} (target <= 1.3); "
        "cold `extsvc run` to one-shot finished "
        f"{start['cold_extsvc_run_to_finished_s'] * 1000:.0f} ms"
    )
    one, _ = time_to_running(1)
    twenty, idle = time_to_running(20)
    bare_one, bare_twenty = bare_parallel_first_output(1), bare_parallel_first_output(20)
    print(
        f"parallel start: 1 service {one * 1000:.0f} ms, 20 services {twenty * 1000:.0f} ms "
        f"-> ratio {twenty / one:.2f} (target <= 1.5)\n"
        f"  host floor, bare `runc run`: 1 {bare_one * 1000:.0f} ms, 20 in parallel "
        f"{bare_twenty * 1000:.0f} ms -> ratio {bare_twenty / bare_one:.2f}; "
        f"executor/bare for 20: {twenty / bare_twenty:.2f}"
    )
    print(
        f"idle with 20 services: executor CPU {idle['idle_cpu_percent']:.2f}% (target < 1%), "
        f"RSS {idle['rss_mb']:.1f} MB (target < 80 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
