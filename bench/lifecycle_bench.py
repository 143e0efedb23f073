"""Container lifecycle: every ratio measured in one run, rounds interleaved.

    .venv/bin/python bench/lifecycle_bench.py [--rounds N] [--idle-seconds S] [--peers] [--editable]

Needs root, runc and busybox-static; installs nothing. Each round measures every
figure once, alternating extsvc and its baseline, so a noisy neighbour slows both;
medians over the rounds are printed, with its target beside each ratio:

1. cold start: `extsvc run OUT` -> the service's first line, against a bare
   `runc run` -> first line (target <= 2x);
2. dependency met -> the dependent's first line (its container was created while
   it waited), against a bare `runc start` -> first line of a created container
   (target <= 1.5x);
3. a chain of 5 services, each depending on the previous: the first one's start
   -> the last one's first line, against 5 sequential bare `runc run`s (<= 0.6x);
4. 20 independent services -> all first lines, cold `extsvc run`, against 20
   parallel bare `runc run`s (target <= 1.1x);
5. memory of the supervision tree with 20 running services: RSS of the executor
   and every helper process it keeps (target <= 40 MB);
6. idle: executor CPU and context switches over --idle-seconds (default 30) with 20
   running services (target: < 0.5 % CPU, no periodic wakeups).

It also prints the import time of the cold `run` path (`python -X importtime`).
extsvc is measured as a user runs it: installed from a wheel of this checkout into a
fresh venv (the checkout's editable install adds ~14 ms of import-hook set-up to every
interpreter start); --editable measures the checkout as it is.
With --peers, containerd's `ctr` and podman are measured beside when installed
(`make bench-peers` installs them first); they run on private sockets and state
dirs under a temporary directory and never touch a system daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from extsvc.executor.daemon.control import ControlClient  # noqa: E402
from extsvc.executor.errors import DaemonUnreachableError  # noqa: E402
from extsvc.executor.runtime import mounts  # noqa: E402
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec  # noqa: E402
from tests.support.rootfs import find_static_busybox, make_busybox_rootfs  # noqa: E402

EXTSVC = [sys.executable, "-m", "extsvc"]
# The Python that runs `extsvc run` in the measurements: by default a fresh venv holding
# extsvc installed from its wheel, as a user runs it (the checkout's editable install
# adds ~14 ms of import-hook set-up to every start); --editable: this checkout's.
RUN_PYTHON = [sys.executable]
# extsvc as installed: pip byte-compiles a package, so its modules are compiled once up
# front (main) and PYTHONDONTWRITEBYTECODE (set in some sandboxes) must not make every
# cold start compile them again.
ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
HELLO = "echo hi"
IDLE = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"
HELLO_IDLE = f"echo hi; {IDLE}"
PACKAGES = ("extsvc", "compiler", "executor")
# Cgroups are host-global: this run's services get their own names (suffix).
RUN_TAG = f"-b{os.getpid()}"
# Imported before the first `runc create` is spawned (executor.daemon.startup), then the rest
# of the `run` path, imported while those creates run.
START_UP_IMPORTS = "import extsvc.entry, extsvc.executor.cli.run, extsvc.executor.daemon.startup"
RUN_PATH_IMPORTS = START_UP_IMPORTS + ", extsvc.executor.daemon.main"


# ----- plans and bundles


def service_yaml(name: str, script: str, restart: str, after: str | None = None) -> str:
    document: dict[str, Any] = {
        "name": name + RUN_TAG,
        "container": {"entrypoint": "/bin/sh", "args": ["-c", script]},
        "restart": restart,
        "logToConsole": True,
    }
    if after is not None:
        document["depends"] = [{"service": f"ext-{after}{RUN_TAG}"}]
    return json.dumps(document)


def compile_plan(work: Path, services: dict[str, tuple[str, str, str | None]]) -> Path:
    """``{name: (script, restart, depends-on)}`` compiled to ``work/out``."""
    source, out, base = work / "src", work / "out", work / "rootfs"
    source.mkdir(parents=True)
    for name, (script, restart, after) in services.items():
        (source / f"{name}.yaml").write_text(service_yaml(name, script, restart, after))
        make_busybox_rootfs(base / (name + RUN_TAG))
    subprocess.run(
        [*EXTSVC, "compile", str(source), "-o", str(out), "--rootfs-base", str(base)],
        check=True,
        capture_output=True,
    )
    return out


def bare_bundle(out: Path, name: str, bundle: Path, args: list[str] | None = None) -> Path:
    """The compiled bundle of ``name``, host-adapted as the executor would, for bare runc."""
    spec = json.loads((out / "bundles" / (name + RUN_TAG) / "config.json").read_text())
    spec, _ = adapt_spec(spec, HostFacts.probe())
    if args is not None:
        spec["process"]["args"] = args
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


# ----- processes whose output lines are timestamped as they arrive


class Lines:
    """Reads a pipe on a thread; remembers when each line arrived (time.monotonic)."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            with self._changed:
                self.seen.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                self._changed.notify_all()

    def wait(self, predicate: Callable[[str], bool], after: float, timeout: float = 60) -> float:
        """When the first line matching ``predicate`` arrived at or after ``after``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, line in self.seen:
                    if at >= after and predicate(line):
                        return at
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"no matching line in {timeout}s: {self.seen[-5:]}")
                self._changed.wait(remaining)


def first_line_of(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its first output line; waits for it to end."""
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    process.stdout.readline()
    elapsed = time.monotonic() - started
    process.stdout.read()
    process.wait(60)
    return elapsed


class Executor:
    """`extsvc run` with its stdout (the console lines) read as they come."""

    def __init__(self, work: Path, out: Path, tag: str, extra: Sequence[str] = ()) -> None:
        self.work = work
        self.state = work / f"state-{tag}"
        self.client = ControlClient(self.state, timeout=60)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                *RUN_PYTHON,
                "-m",
                "extsvc",
                "run",
                str(out),
                "--state-dir",
                str(self.state),
                "--log-dir",
                str(work / f"logs-{tag}"),
                "--quiet",
                "--stop-timeout",
                "2s",
                "--console",
                "stdout",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=ENVIRONMENT,
        )
        self.lines = Lines(self.process.stdout)

    def first_line(self, service: str, after: float | None = None) -> float:
        prefix = f"ext-{service}{RUN_TAG}: "
        return self.lines.wait(lambda line: line.startswith(prefix), after or self.started)

    def wait_control(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(DaemonUnreachableError):
                self.client.request({"op": "services"})
                return
            time.sleep(0.01)
        raise RuntimeError("the executor's control socket never answered")

    def request(self, op: str, service: str) -> dict[str, Any]:
        return self.client.request({"op": op, "id": f"ext-{service}{RUN_TAG}"})

    def service(self, service: str) -> dict[str, Any]:
        return self.request("service", service)["service"]  # type: ignore[no-any-return]

    def wait_state(self, service: str, *states: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.service(service)
            if found["state"] in states:
                return found
            time.sleep(0.005)
        raise RuntimeError(f"ext-{service} never reached {states}")

    def created(self, service: str) -> bool:
        listed = subprocess.run(
            ["runc", "--root", str(self.state / "runc"), "state", f"ext-{service}{RUN_TAG}"],
            capture_output=True,
            text=True,
        )
        return listed.returncode == 0 and json.loads(listed.stdout)["status"] == "created"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)


@contextlib.contextmanager
def executor(work: Path, out: Path, tag: str) -> Iterator[Executor]:
    running = Executor(work, out, tag)
    try:
        yield running
    finally:
        running.stop()


# ----- the figures


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.bare_root = work / "bare-runc"
        self.counter = 0
        self.one = compile_plan(work / "one", {"hello": (HELLO_IDLE, "always", None)})
        chain = {"gate": (IDLE, "never", None)}
        previous = "gate"
        for index in range(1, 6):
            chain[f"link{index}"] = (HELLO_IDLE, "always", previous)
            previous = f"link{index}"
        self.chain = compile_plan(work / "chain", chain)
        self.twenty_names = [f"p{index:02d}" for index in range(20)]
        self.twenty = compile_plan(
            work / "twenty", {n: (HELLO_IDLE, "always", None) for n in self.twenty_names}
        )
        self.bundle = bare_bundle(
            self.one, "hello", work / "bare" / "hello", ["/bin/sh", "-c", HELLO]
        )
        self.bundles20 = [
            bare_bundle(self.twenty, n, work / "bare" / n, ["/bin/sh", "-c", HELLO])
            for n in self.twenty_names
        ]

    def _id(self) -> str:
        self.counter += 1
        return f"bench-{os.getpid()}-{self.counter}"

    def runc(self, *args: str) -> list[str]:
        return ["runc", "--root", str(self.bare_root), *args]

    # 1. cold start
    def bare_run(self) -> float:
        return first_line_of(self.runc("run", "--bundle", str(self.bundle), self._id()))

    def cold_extsvc(self) -> float:
        with executor(self.work, self.one, f"cold-{self._id()}") as running:
            return running.first_line("hello") - running.started

    def bare_create_start(self) -> float:
        """The floor of the create + start design: `runc create`, then at once `runc
        start` -> first line (two runc processes where `runc run` is one)."""
        container = self._id()
        read_end, write_end = os.pipe()
        started = time.monotonic()
        subprocess.run(
            self.runc("create", "--bundle", str(self.bundle), container),
            stdout=write_end,
            stderr=write_end,
            stdin=subprocess.DEVNULL,
            check=True,
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as output:
            subprocess.run(self.runc("start", container), check=True)
            output.readline()
            elapsed = time.monotonic() - started
            output.read()
        subprocess.run(self.runc("delete", "--force", container), check=True)
        return elapsed

    # 2. dependency met -> first line of a created container
    def bare_start(self) -> float:
        container = self._id()
        read_end, write_end = os.pipe()
        subprocess.run(
            self.runc("create", "--bundle", str(self.bundle), container),
            stdout=write_end,
            stderr=write_end,
            stdin=subprocess.DEVNULL,
            check=True,
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as output:
            started = time.monotonic()
            subprocess.run(self.runc("start", container), check=True)
            output.readline()
            elapsed = time.monotonic() - started
            output.read()
        subprocess.run(self.runc("delete", "--force", container), check=True)
        return elapsed

    # 3. chain of 5 (and 2: the first link alone)
    def chain_once(self, running: Executor) -> tuple[float, float]:
        """(gate Running -> link1's first line, gate Running -> link5's first line)."""
        for index in range(5, 0, -1):
            running.request("stop", f"link{index}")
        running.request("stop", "gate")
        for index in range(1, 6):
            running.request("start", f"link{index}")
        deadline = time.monotonic() + 30
        while not all(running.created(f"link{i}") for i in range(1, 6)):
            if time.monotonic() > deadline:
                raise RuntimeError("the chain was not created while waiting")
            time.sleep(0.01)
        requested = time.monotonic()
        running.request("start", "gate")
        gate = running.wait_state("gate", "Running")
        # The gate's Running event (wall clock) in this process's monotonic clock.
        event = next(e for e in gate["events"] if e["message"].startswith("Started task"))
        gate_running = time.monotonic() - (time.time() - event_time(event))
        first = running.first_line("link1", requested)
        last = running.first_line("link5", requested)
        return first - gate_running, last - gate_running

    def bare_chain(self) -> float:
        started = time.monotonic()
        for _ in range(5):
            first_line_of(self.runc("run", "--bundle", str(self.bundle), self._id()))
        return time.monotonic() - started

    # 4. twenty in parallel
    def bare_twenty(self) -> float:
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                self.runc("run", "--bundle", str(bundle), self._id()),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for bundle in self.bundles20
        ]
        for process in processes:
            assert process.stdout is not None
            process.stdout.readline()
        elapsed = time.monotonic() - started
        for process in processes:
            assert process.stdout is not None
            process.stdout.read()
            process.wait(60)
        return elapsed

    def bare_twenty_create_start(self) -> float:
        """The floor of the create + start design: 20 bare `runc create`s in parallel,
        each container started (`runc start`) as soon as its create returns."""
        started = time.monotonic()
        containers = []
        for bundle in self.bundles20:
            container = self._id()
            read_end, write_end = os.pipe()
            create = subprocess.Popen(
                self.runc("create", "--bundle", str(bundle), container),
                stdout=write_end,
                stderr=write_end,
                stdin=subprocess.DEVNULL,
            )
            os.close(write_end)
            containers.append((container, create, os.fdopen(read_end, "rb")))
        starts = []
        pending = list(containers)
        while pending:  # start each as soon as its create is done
            for item in list(pending):
                if item[1].poll() is not None:
                    pending.remove(item)
                    starts.append(subprocess.Popen(self.runc("start", item[0])))
            time.sleep(0.001)
        for _, _, output in containers:
            output.readline()
        elapsed = time.monotonic() - started
        for start in starts:
            start.wait(60)
        for container, _, output in containers:
            output.read()
            output.close()
            subprocess.run(self.runc("delete", "--force", container), check=True)
        return elapsed

    def cold_twenty(self, extra: Sequence[str] = ()) -> tuple[float, Executor]:
        running = Executor(self.work, self.twenty, f"twenty-{self._id()}", extra)
        last = max(running.first_line(n) for n in self.twenty_names)
        return last - running.started, running


def event_time(event: dict[str, Any]) -> float:
    """An event's time as the control socket gives it (RFC 3339, or seconds)."""
    stamp = event["time"]
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return float(stamp)


def supervision_rss_mb(pid: int, container_inits: set[int]) -> tuple[float, int]:
    """RSS of ``pid`` and of its descendants that are not containers: (MB, helpers)."""
    root = psutil.Process(pid)
    total, helpers = root.memory_info().rss, 0
    for child in root.children(recursive=False):
        if child.pid in container_inits:
            continue
        with contextlib.suppress(psutil.Error):
            total += sum(p.memory_info().rss for p in [child, *child.children(recursive=True)])
            helpers += 1
    return total / 2**20, helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def idle_cost(pid: int, seconds: float) -> tuple[float, int]:
    """(CPU %, context switches) of ``pid`` over ``seconds`` of doing nothing."""
    process = psutil.Process(pid)
    cpu_before, switches_before = process.cpu_times(), process.num_ctx_switches()
    time.sleep(seconds)
    cpu_after, switches_after = process.cpu_times(), process.num_ctx_switches()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    switches = sum(switches_after) - sum(switches_before)
    return 100 * cpu / seconds, switches


def import_ms(statement: str, repeat: int = 5) -> float:
    """Total import time of ``statement`` (min over runs), from `python -X importtime`."""
    totals = []
    for _ in range(repeat):
        err = subprocess.run(
            [*RUN_PYTHON, "-X", "importtime", "-c", statement],
            capture_output=True, text=True, check=True, env=ENVIRONMENT,
        ).stderr  # fmt: skip
        top = [int(m[1]) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| (?! )\S", err)]
        totals.append(sum(top))
    return min(totals) / 1000


def installed_python(work: Path) -> str:
    """A new venv with extsvc installed from a wheel of this checkout, byte-compiled as
    pip does; its python."""
    venv, wheels = work / "installed-venv", work / "wheel"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The test suite's wheel builder (tests/support/wheel.py): from a clean copy, never
    # with what a stale build/lib still holds.
    spec = importlib.util.spec_from_file_location("wheel_builder", REPO / "tests/support/wheel.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    wheel = builder.build_wheel(wheels)
    (site,) = venv.glob("lib/python*/site-packages")
    zipfile.ZipFile(wheel).extractall(site)
    # Its dependencies (psutil for status requests, ...) from this checkout's venv: a
    # path in a .pth is only appended to sys.path (that venv's own .pth files, the
    # editable install's import hook among them, are not run).
    (dependencies,) = Path(sys.prefix).glob("lib/python*/site-packages")
    (site / "extsvc-bench-dependencies.pth").write_text(f"{dependencies}\n")
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "compileall", "-q", str(site / "extsvc")], check=True,
                   stdout=subprocess.DEVNULL, env=ENVIRONMENT)  # fmt: skip
    return python


def heavy_imports_on_run_path() -> list[str]:
    err = subprocess.run(
        [*RUN_PYTHON, "-X", "importtime", "-c", RUN_PATH_IMPORTS],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    loaded = set(re.findall(r"\|\s+(\S+)$", err, re.MULTILINE))
    return sorted(loaded & {"yaml", "jsonschema", "psutil", "lark", "ctypes.util", "click"})


# ----- peers (only when installed; never installed here)


class Peers:
    """containerd (`ctr`, on a private containerd) and podman, on private state dirs."""

    def __init__(self, work: Path, rootfs: Path) -> None:
        self.work = work
        self.rootfs = rootfs
        self.containerd: subprocess.Popen[bytes] | None = None
        self.counter = 0
        self.ctr_ok = bool(shutil.which("ctr") and shutil.which("containerd"))
        self.podman_ok = bool(shutil.which("podman"))
        if self.ctr_ok:
            base = work / "containerd"
            self.socket = base / "containerd.sock"
            config = base / "config.toml"
            base.mkdir(parents=True)
            config.write_text("version = 2\n")
            self.containerd = subprocess.Popen(
                [
                    "containerd",
                    "--config",
                    str(config),
                    "--address",
                    str(self.socket),
                    "--root",
                    str(base / "root"),
                    "--state",
                    str(base / "state"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 30
            while not self.socket.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.ctr_ok = self.socket.exists()
        self.podman_root = work / "podman"
        # A peer that cannot run a container on this host is reported, not measured.
        self.problems: dict[str, str] = {}
        for peer, ok, argv in (
            ("ctr", self.ctr_ok, self.ctr_run),
            ("podman", self.podman_ok, self.podman_run),
        ):
            if not ok:
                continue
            trial = subprocess.run(argv(), capture_output=True, text=True, timeout=300)
            if trial.returncode != 0 or "hi" not in trial.stdout:
                lines = (trial.stderr or trial.stdout).strip().splitlines()
                self.problems[peer] = lines[-1] if lines else f"exit code {trial.returncode}"
        self.ctr_ok = self.ctr_ok and "ctr" not in self.problems
        self.podman_ok = self.podman_ok and "podman" not in self.problems

    def _id(self) -> str:
        self.counter += 1
        return f"peer-{os.getpid()}-{self.counter}"

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", "extsvc-bench", *args]

    def ctr_run(self, detach: bool = False, script: str = HELLO) -> list[str]:
        flags = ["--detach"] if detach else ["--rm"]
        return self.ctr(
            "run", *flags, "--rootfs", str(self.rootfs), self._id(), "/bin/sh", "-c", script
        )

    def podman(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.podman_root / "root"),
                "--runroot", str(self.podman_root / "run"), "--cgroup-manager", "cgroupfs",
                "--events-backend", "none", *args]  # fmt: skip

    def podman_run(self, detach: bool = False, script: str = HELLO) -> list[str]:
        flags = ["-d"] if detach else ["--rm"]
        # Host network and limits: as an extension service (no network setup to pay for),
        # and podman's default open-files limit is above this sandbox's hard limit.
        return self.podman(
            "run", *flags, "--network", "host", "--ulimit", "host",
            "--rootfs", str(self.rootfs), "/bin/sh", "-c", script,
        )  # fmt: skip

    def parallel(self, argvs: list[list[str]]) -> float:
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            for argv in argvs
        ]
        for process in processes:
            assert process.stdout is not None
            process.stdout.readline()
        elapsed = time.monotonic() - started
        for process in processes:
            process.communicate(timeout=120)
        return elapsed

    def ctr_rss_mb(self, count: int) -> float:
        """containerd plus its shims with ``count`` running containers."""
        ids = []
        for _ in range(count):
            argv = self.ctr_run(detach=True, script=IDLE)
            ids.append(argv[argv.index(str(self.rootfs)) + 1])
            subprocess.run(argv, check=True, capture_output=True)
        time.sleep(2)
        assert self.containerd is not None
        total = psutil.Process(self.containerd.pid).memory_info().rss
        for process in psutil.process_iter(["cmdline"]):
            cmdline = process.info["cmdline"] or []
            if cmdline and "containerd-shim" in cmdline[0] and "extsvc-bench" in cmdline:
                total += process.memory_info().rss
        for container in ids:
            subprocess.run(self.ctr("task", "kill", "-s", "KILL", container), capture_output=True)
        time.sleep(1)
        for container in ids:
            subprocess.run(self.ctr("task", "delete", container), capture_output=True)
            subprocess.run(self.ctr("container", "delete", container), capture_output=True)
        return total / 2**20

    def podman_rss_mb(self, count: int) -> float:
        """The conmon processes of ``count`` running podman containers (no daemon)."""
        ids = [
            subprocess.run(
                self.podman_run(detach=True, script=IDLE),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            for _ in range(count)
        ]
        time.sleep(2)
        total = 0
        for process in psutil.process_iter(["name", "cmdline"]):
            if process.info["name"] == "conmon" and str(self.podman_root) in " ".join(
                process.info["cmdline"] or []
            ):
                total += process.memory_info().rss
        subprocess.run(self.podman("rm", "-f", "-t", "0", *ids), capture_output=True)
        return total / 2**20

    def close(self) -> None:
        if shutil.which("podman"):
            subprocess.run(self.podman("rm", "-a", "-f", "-t", "0"), capture_output=True)
        if self.containerd is not None:
            self.containerd.terminate()
            self.containerd.wait(30)
        # podman's storage keeps its overlay home mounted (a private bind mount).
        for point in mounts.mounts_under(self.work / "podman", self.work / "containerd"):
            with contextlib.suppress(OSError):
                mounts.unmount(point)


# ----- main


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def floor(ours: list[float], design: list[float], base: list[float], count: str) -> None:
    """The create + start design's own floor (two runc processes per container where
    `runc run` is one), measured in the same rounds: how much of a ratio is extsvc's."""
    print(
        f"   floor of create + start ({count}, bare runc): {median_ms(design):.0f} ms = "
        f"{median_ms(design) / median_ms(base):.2f}x bare `runc run`; extsvc is "
        f"{median_ms(ours) / median_ms(design):.2f}x that floor"
    )


def report(label: str, ours: list[float], base: list[float], target: str, base_label: str) -> None:
    ratio = statistics.median(ours) / statistics.median(base)
    print(
        f"{label}: extsvc {median_ms(ours):.0f} ms vs {base_label} {median_ms(base):.0f} ms "
        f"-> {ratio:.2f}x (target {target})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians)")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--peers", action="store_true", help="measure ctr and podman too")
    parser.add_argument(
        "--editable",
        action="store_true",
        help="run this checkout's extsvc (editable install) instead of an installed wheel",
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None or find_static_busybox() is None:
        print("bench: needs root, runc and busybox-static", file=sys.stderr)
        return 3
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(REPO / d) for d in PACKAGES)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=ENVIRONMENT,
    )
    with tempfile.TemporaryDirectory(
        prefix="extsvc-lifecycle-bench-", ignore_cleanup_errors=True
    ) as temporary:
        work = Path(temporary)
        if not args.editable:
            RUN_PYTHON[:] = [installed_python(work)]
        print(
            "extsvc run as installed from its wheel in a fresh venv"
            if not args.editable
            else "extsvc run from this checkout (editable install)"
        )
        load = os.getloadavg()[0]
        print(
            f"host: {os.cpu_count()} CPUs, load average {load:.1f} at the start"
            + (" (busy: figures are noisy)" if load > 1 else "")
        )
        print(
            f"import time of the cold `run` path: {import_ms(RUN_PATH_IMPORTS):.0f} ms, "
            f"{import_ms(START_UP_IMPORTS):.0f} ms of it before the first `runc create` "
            f"(python -X importtime; heavy modules on it: {heavy_imports_on_run_path() or 'none'})"
        )
        bench = Bench(work)
        rootfs = work / "one" / "rootfs" / ("hello" + RUN_TAG)
        peers = Peers(work, rootfs) if args.peers else None
        results: dict[str, list[float]] = {}

        def add(key: str, value: float) -> None:
            results.setdefault(key, []).append(value)

        try:
            with executor(work, bench.chain, "chain") as chained:
                chained.wait_control()
                for _ in range(args.rounds):
                    add("bare_run", bench.bare_run())
                    add("cold", bench.cold_extsvc())
                    add("bare_create_start", bench.bare_create_start())
                    add("bare_start", bench.bare_start())
                    first, last = bench.chain_once(chained)
                    add("dependent", first)
                    add("chain", last)
                    add("bare_chain", bench.bare_chain())
                    add("bare_twenty", bench.bare_twenty())
                    add("bare_twenty_create_start", bench.bare_twenty_create_start())
                    twenty, running = bench.cold_twenty()
                    add("twenty", twenty)
                    running.stop()
                    if peers is not None and peers.ctr_ok:
                        add("ctr_one", first_line_of(peers.ctr_run()))
                        add("ctr_twenty", peers.parallel([peers.ctr_run() for _ in range(20)]))
                    if peers is not None and peers.podman_ok:
                        add("podman_one", first_line_of(peers.podman_run()))
                        add(
                            "podman_twenty",
                            peers.parallel([peers.podman_run() for _ in range(20)]),
                        )
            # Memory and idle are measured with every metrics output on (a file and an
            # HTTP endpoint): publishing them must cost no wake-up while nothing changes.
            (work / "metrics").mkdir(exist_ok=True)
            twenty, running = bench.cold_twenty(
                ("--metrics-file", str(work / "metrics" / "extsvc.prom"),
                 "--metrics-listen", f"127.0.0.1:{free_port()}")
            )  # fmt: skip
            try:
                inits = {running.service(n)["pid"] for n in bench.twenty_names}
                rss, helpers = supervision_rss_mb(running.process.pid, inits)
                cpu, switches = idle_cost(running.process.pid, args.idle_seconds)
            finally:
                running.stop()
            if peers is not None and peers.ctr_ok:
                results["ctr_rss"] = [peers.ctr_rss_mb(20)]
            if peers is not None and peers.podman_ok:
                results["podman_rss"] = [peers.podman_rss_mb(20)]
        finally:
            if peers is not None:
                peers.close()

    print(f"medians of {args.rounds} interleaved rounds:")
    report(
        "1. cold start -> first line",
        results["cold"],
        results["bare_run"],
        "<= 2x",
        "bare `runc run`",
    )
    floor(results["cold"], results["bare_create_start"], results["bare_run"], "one")
    report(
        "2. dependency met -> dependent's first line",
        results["dependent"],
        results["bare_start"],
        "<= 1.5x",
        "bare `runc start`",
    )
    report(
        "3. chain of 5 -> last first line",
        results["chain"],
        results["bare_chain"],
        "<= 0.6x",
        "5 sequential bare `runc run`s",
    )
    report(
        "4. 20 services, cold -> all first lines",
        results["twenty"],
        results["bare_twenty"],
        "<= 1.1x",
        "20 parallel bare `runc run`s",
    )
    floor(results["twenty"], results["bare_twenty_create_start"], results["bare_twenty"], "20")
    print(
        f"5. supervision tree with 20 running services: {rss:.1f} MB RSS "
        f"(executor + {helpers} helper processes; target <= 40 MB)"
    )
    print(
        f"6. idle over {args.idle_seconds:.0f} s with 20 services (metrics file and endpoint on): "
        f"executor CPU {cpu:.2f} % "
        f"(target < 0.5 %), {switches} context switches"
    )
    for peer in ("ctr", "podman"):
        if f"{peer}_one" in results:
            base_run = statistics.median(results["bare_run"])
            base_twenty = statistics.median(results["bare_twenty"])
            one, twenty_peer = (
                statistics.median(results[f"{peer}_{k}"]) for k in ("one", "twenty")
            )
            print(
                f"peer {peer}: launch -> first line {one * 1000:.0f} ms "
                f"({one / base_run:.2f}x bare runc run); 20 parallel {twenty_peer * 1000:.0f} ms "
                f"({twenty_peer / base_twenty:.2f}x); 20 running: "
                f"{results[f'{peer}_rss'][0]:.0f} MB RSS"
            )
        elif peers is not None and peer in peers.problems:
            print(f"peer {peer}: cannot run a container here: {peers.problems[peer]}")
        elif args.peers:
            print(f"peer {peer}: not installed (make bench-peers installs it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
