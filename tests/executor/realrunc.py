"""Helpers for tests that run the real executor (`extsvc run`) with real runc containers.

Each test compiles its services with the real compiler, builds busybox rootfs
dirs, runs the daemon as a subprocess and talks to it through the control
socket, exactly as a user would. Teardown removes every trace (containers,
mounts, cgroups) even when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import psutil

from extsvc.executor.daemon.control import ControlClient
from extsvc.executor.errors import DaemonUnreachableError
from extsvc.executor.runtime import cgroups, mounts
from tests.support.rootfs import make_busybox_rootfs

EXTSVC = [sys.executable, "-m", "extsvc"]
FAST_OPTIONS = ("--restart-interval", "200ms", "--stop-timeout", "1s", "--check-interval", "200ms")
# A container that idles until stopped. `sleep & wait` lets a trap run at once; as PID 1,
# sh ignores a SIGTERM it does not trap, so a stop of SLEEP_LOOP alone ends with SIGKILL
# after --stop-timeout, and IDLE exits 0 at the SIGTERM.
SLEEP_LOOP = "while :; do sleep 1 & wait $!; done"
IDLE = f"trap 'exit 0' TERM; {SLEEP_LOOP}"


def unique(name: str) -> str:
    """Service names unique per test run: cgroups are global, other suites may run alongside."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def recompile(tmp: Path, name: str, text: str) -> None:
    """Change one service's YAML and compile into the same OUT (what an operator does)."""
    (tmp / "src" / f"{name}.yaml").write_text(text)
    subprocess.run(
        [*EXTSVC, "compile", str(tmp / "src"), "-o", str(tmp / "out"),
         "--rootfs-base", str(tmp / "rootfs")],
        check=True, capture_output=True,
    )  # fmt: skip


def compile_plan(tmp: Path, services: dict[str, str]) -> tuple[Path, Path]:
    """Write each YAML, build each busybox rootfs, compile; returns (OUT, rootfs base)."""
    source = tmp / "src"
    source.mkdir(parents=True, exist_ok=True)
    base = tmp / "rootfs"
    for name, text in services.items():
        (source / f"{name}.yaml").write_text(text)
        make_busybox_rootfs(base / name)
    out = tmp / "out"
    subprocess.run(
        [*EXTSVC, "compile", str(source), "-o", str(out), "--rootfs-base", str(base)],
        check=True,
        capture_output=True,
    )
    return out, base


def shell_service(
    name: str,
    script: str,
    restart: str = "always",
    depends: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    writeable_rootfs: bool = False,
    log_to_console: bool = False,
    extsvc: dict[str, Any] | None = None,
) -> str:
    """A service YAML running ``/bin/sh -c script`` (JSON is valid YAML)."""
    container: dict[str, Any] = {"entrypoint": "/bin/sh", "args": ["-c", script]}
    if mounts:
        container["mounts"] = mounts
    if writeable_rootfs:
        container["security"] = {"writeableRootfs": True}
    document: dict[str, Any] = {"name": name, "container": container, "restart": restart}
    if depends:
        document["depends"] = depends
    if log_to_console:
        document["logToConsole"] = True
    if extsvc is not None:
        document["x-extsvc"] = extsvc
    return json.dumps(document, indent=2)


def bind(source: Path, destination: str) -> dict[str, Any]:
    return {
        "source": str(source),
        "destination": destination,
        "type": "bind",
        "options": ["rbind", "rw"],
    }


class Daemon:
    def __init__(
        self, tmp: Path, out: Path, names: list[str], *extra: str, cgroup_parent: str = ""
    ) -> None:
        self.tmp = tmp
        # Where the containers' cgroups are expected ("" = as compiled).
        self.cgroup_parent = cgroup_parent
        # Run before `extsvc run` (``exec "$@"`` at its end), e.g. to enter a cgroup.
        self.wrapper: list[str] = []
        self.out = out
        self.names = names
        self.state_dir = tmp / "state"
        self.log_dir = tmp / "logs"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_path = tmp / "daemon.stdout"
        self.stderr_path = tmp / "daemon.stderr"
        self.client = ControlClient(self.state_dir, timeout=30)

    def argv(self) -> list[str]:
        return [
            *self.wrapper, *EXTSVC, "run", str(self.out),
            "--state-dir", str(self.state_dir),
            "--log-dir", str(self.log_dir),
            *FAST_OPTIONS, *self.extra,
        ]  # fmt: skip

    def start(
        self, env: dict[str, str] | None = None, new_session: bool = False, answering: bool = True
    ) -> Daemon:
        """Run it; ``new_session``: as a terminal's foreground job, its own process group;
        ``answering``: return once its control socket answers (else at once)."""
        environment = {**os.environ, **(env or {})}
        with self.stdout_path.open("ab") as stdout, self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                self.argv(), stdout=stdout, stderr=stderr, env=environment,
                start_new_session=new_session,
            )  # fmt: skip
        if answering:
            wait_for(self._answers, timeout=20, what="the control socket")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}: {self.stderr()}")
        try:
            self.client.request({"op": "services"})
        except DaemonUnreachableError:
            return False
        return True

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def service(self, service_id: str) -> dict[str, Any]:
        return self.client.request({"op": "service", "id": service_id})["service"]  # type: ignore[no-any-return]

    def state(self, service_id: str) -> str:
        return str(self.service(service_id)["state"])

    def control(self, op: str, service_id: str) -> dict[str, Any]:
        return self.client.request({"op": op, "id": service_id})

    def records(self, service_id: str) -> list[dict[str, Any]]:
        """Every kept log record of the service: {"time", "service", "stream", "line"}."""
        stream = self.client.stream({"op": "logs", "id": service_id, "tail": None})
        return [m for m in stream if "line" in m]

    def logs(self, service_id: str) -> list[str]:
        """The container's lines (not the executor's run markers)."""
        return [r["line"] for r in self.records(service_id) if r["stream"] == "output"]

    def extsvc(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """An `extsvc` command against this daemon's state and log dirs."""
        dirs = ["--state-dir", str(self.state_dir)]
        if args[0] == "logs":
            dirs += ["--log-dir", str(self.log_dir)]
        return subprocess.run(
            [*EXTSVC, *args, *dirs], capture_output=True, text=True, check=check, timeout=60
        )

    def wait_state(self, service_id: str, *states: str, timeout: float = 15) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.service(service_id))
            return found["state"] in states

        wait_for(reached, timeout, f"{service_id} to be {'/'.join(states)}: {found}")
        return found

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the clean shutdown path. Returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def force_cleanup(self) -> None:
        """Whatever happened, leave no containers, mounts or cgroups behind."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(timeout=30)
            if self.process.poll() is None:
                self.kill()
        remove_traces(self.state_dir, self.names, self.cgroup_parent)


def running_pid(daemon: Daemon, service_id: str) -> int:
    """The pid of `service_id` once it is Running."""
    return int(daemon.wait_state(service_id, "Running")["pid"])


def service_cgroup(name: str, parent: str = "") -> str:
    return f"{parent}/system/extensions/{name}"


def remove_traces(state_dir: Path, names: list[str], cgroup_parent: str = "") -> None:
    runc_root = state_dir / "runc"
    if runc_root.exists():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        )
        for container_id in listed.stdout.split():
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", container_id],
                           capture_output=True)  # fmt: skip
    for point in mounts.mounts_under(state_dir):
        mounts.unmount(point)
    for name in names:
        path = service_cgroup(name, cgroup_parent)
        for pid in cgroups.processes(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # A killed process holds its cgroup until reaped (by whoever it was re-parented to).
        with contextlib.suppress(AssertionError):
            wait_for(lambda path=path: not cgroups.processes(path), 10, f"{path} to empty")
        cgroups.remove(path)


def traces(state_dir: Path, names: list[str], cgroup_parent: str = "") -> list[str]:
    """What a stopped executor must not have left: containers, mounts, cgroup dirs."""
    found: list[str] = []
    runc_root = state_dir / "runc"
    if runc_root.exists():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        )
        found += [f"container {c}" for c in listed.stdout.split()]
    found += [f"mount {p}" for p in mounts.mounts_under(state_dir)]
    for name in names:
        path = service_cgroup(name, cgroup_parent)
        found += [f"cgroup {d}" for d in cgroups.cgroup_dirs(path) if d.exists()]
    return found


def alive(pid: int) -> bool:
    """Running (a zombie is dead: its parent, the executor, may just have exited)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def running_daemon(
    tmp: Path,
    out: Path,
    names: list[str],
    *extra: str,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> Iterator[Daemon]:
    """A started daemon (see ``Daemon.start``), cleaned up whatever happened: stopped or
    killed if still running, and every trace it left removed."""
    daemon = Daemon(tmp, out, names, *extra)
    try:
        yield daemon.start(env=env, new_session=new_session)
    finally:
        daemon.force_cleanup()


@contextlib.contextmanager
def notify_receiver(path: Path) -> Iterator[list[str]]:
    """A datagram socket at ``path``, read all along as systemd reads its own."""
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                messages.append(receiver.recv(4096).decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield messages
    finally:
        done.set()
        reader.join(5)
        receiver.close()


# -- what several real-runc tests read off a running executor ------------------------


def messages(service: dict[str, object]) -> list[str]:
    """Event messages, oldest first."""
    events = service["events"]
    assert isinstance(events, list)
    return [e["message"] for e in reversed(events)]


def runc_state(state_dir: Path, container_id: str) -> str:
    listed = subprocess.run(
        ["runc", "--root", str(state_dir / "runc"), "state", container_id],
        capture_output=True, text=True,
    )  # fmt: skip
    if listed.returncode != 0:
        return "absent"
    return str(json.loads(listed.stdout)["status"])


def compile_gated(tmp: Path, name: str, script: str = IDLE) -> tuple[Path, Path]:
    """One service that waits for a file (absent until the test creates it): (OUT, file)."""
    flag = tmp / "flag"
    out, _ = compile_plan(tmp, {name: shell_service(name, script, depends=[{"path": str(flag)}])})
    return out, flag


STATUS_SCHEMA = json.loads(
    (Path(__file__).parents[2] / "docs" / "service-status.schema.json").read_text()
)


def check_shape(document: object, definition: str) -> None:
    """``document`` has the documented shape (docs/service-status.schema.json)."""
    schema = {"$ref": f"#/$defs/{definition}", "$defs": STATUS_SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(document)


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
