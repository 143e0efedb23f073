"""Children get an environment built on purpose, never the executor's.

Under a service manager the executor's environment holds the manager's channels
(NOTIFY_SOCKET, WATCHDOG_*); handed to runc, they put a notify socket into every
container and make `runc start` wait for a READY=1 the service never sends. The real
`extsvc run` is started here under such variables, with real runc: its services
must run exactly as compiled.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from extsvc.executor.process import spawn
from extsvc.executor.process.environment import CHILD_ENVIRONMENT, ServiceManager
from tests.executor.realrunc import (
    IDLE,
    Daemon,
    bind,
    compile_plan,
    notify_receiver,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

# Set in the executor's environment by the tests: no child may see it.
CANARY = "EXTSVC_TEST_CANARY"
# For `sh -c`: writes the environment the shell was given (not the one it exports: its
# last command would be exec'd in its place, with SHLVL and PWD added, without `; true`).
SHELL_ENVIRON = 'cat /proc/$$/environ > "{file}"; true'


def environ_of(path: Path) -> list[str]:
    """A /proc/PID/environ's entries (as the process was exec'd), in order."""
    return [entry for entry in path.read_bytes().decode().split("\0") if entry]


def test_take_reads_the_service_managers_variables_once_and_removes_them() -> None:
    given = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "3000000",
        "WATCHDOG_PID": str(os.getpid()),
        "LISTEN_PID": "1",
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "a:b",
        "PATH": "/somewhere",
    }
    environ = dict(given)
    manager = ServiceManager.take(environ)
    assert manager == ServiceManager("/run/systemd/notify", 3_000_000)
    assert environ == {"PATH": "/somewhere"}
    assert ServiceManager.take(environ) == ServiceManager(None, None)


@pytest.mark.parametrize(
    ("watchdog", "expected"),
    [
        ({"WATCHDOG_USEC": "5000000"}, 5_000_000),  # no WATCHDOG_PID: ours
        ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_the_watchdog_is_ours_only_when_it_names_us(
    watchdog: dict[str, str], expected: int | None
) -> None:
    environ = dict(watchdog)
    assert ServiceManager.take(environ).watchdog_usec == expected
    assert environ == {}


def test_sockets_passed_for_activation_are_kept_from_children() -> None:
    # In a process of its own: fds 3 and 4 are pytest's here.
    script = """
import os, sys
from extsvc.executor.process.environment import ServiceManager
for target in (3, 4):
    os.dup2(os.open(os.devnull, os.O_RDONLY), target, inheritable=True)
ServiceManager.take({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2"})
print(os.get_inheritable(3), os.get_inheritable(4))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_a_spawned_child_gets_the_child_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv(CANARY, "1")
    monkeypatch.setenv("PATH", str(tmp_path))  # the executor's PATH finds nothing
    seen = tmp_path / "environ"
    pid, pidfd = spawn.spawn(["sh", "-c", SHELL_ENVIRON.format(file=seen)])
    try:
        os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    assert environ_of(seen) == [f"{k}={v}" for k, v in CHILD_ENVIRONMENT.items()]
    with pytest.raises(FileNotFoundError):
        spawn.spawn(["no-such-program-anywhere"])


def mount_points(pid: int) -> list[str]:
    """The mount points a process sees, relative to its root (/proc/PID/mountinfo)."""
    lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines]


def check_runs_as_compiled(daemon: Daemon, out: Path, name: str, data: Path) -> None:
    """The service reaches Running and stays there, its line reaches the log, and the
    container is the compiled bundle's: its env, its mounts, no notify socket."""
    service_id = f"ext-{name}"
    pid = int(daemon.wait_state(service_id, "Running", timeout=30)["pid"])
    wait_for(lambda: f"up {name}" in daemon.logs(service_id), 15, "the service's line")
    # A health check ran (runc exec) and wrote what its command was given.
    wait_for(lambda: (data / "exec.environ").exists(), 15, "the health check")
    wait_for(lambda: environ_of(data / "exec.environ") != [], 15, "what it was given")
    spec = json.loads((out / "bundles" / name / "config.json").read_text())
    # runc's one addition: HOME (the user's home from the rootfs's /etc/passwd, else /),
    # when the spec sets none; the busybox rootfs has no passwd.
    env = spec["process"]["env"] + ["HOME=/"]
    assert environ_of(Path(f"/proc/{pid}/environ")) == env
    assert environ_of(data / "exec.environ") == env
    # Every mount the spec lists is there; nothing else is, but what runc itself does
    # with the spec's maskedPaths and readonlyPaths (bind mounts over them).
    seen = mount_points(pid)
    listed = {"/", *(m["destination"] for m in spec["mounts"])}
    masks = {*spec["linux"].get("maskedPaths", ()), *spec["linux"].get("readonlyPaths", ())}
    assert listed <= set(seen)
    assert [point for point in seen if point not in listed | masks] == []
    assert list((daemon.state_dir / "runc").rglob("notify*")) == []
    # Still the same run, still Running, healthy.
    assert daemon.service(service_id)["pid"] == pid
    assert daemon.state(service_id) == "Running"


def service_under_test(name: str, data: Path, host_id: str) -> str:
    """A long-running service that says it is up, with a health check (runc exec) that
    records the environment it was given, waiting for a host service."""
    document = shell_service(
        name,
        f"echo up {name}; {IDLE}",
        mounts=[bind(data, "/data")],
        depends=[{"service": host_id}],
        extsvc={
            "health": {
                "exec": ["/bin/sh", "-c", SHELL_ENVIRON.format(file="/data/exec.environ")],
                "interval": "500ms",
                "timeout": "5s",
            }
        },
    )
    parsed = json.loads(document)
    parsed["container"]["environment"] = ["GREETING=hello", "PATH=/bin"]
    return json.dumps(parsed)


@pytest.mark.runc
@pytest.mark.parametrize("notify_socket", ["read", "missing"])
def test_under_a_service_managers_variables_services_run_as_compiled(
    tmp_path: Path, notify_socket: str
) -> None:
    name, host_id = unique("managed"), unique("host")
    data = tmp_path / "data"
    data.mkdir()
    readiness = tmp_path / "readiness.environ"
    hosts = tmp_path / "host-services.yaml"
    # `sh` without a path: found in the children's PATH.
    hosts.write_text(
        json.dumps({host_id: {"command": ["sh", "-c", SHELL_ENVIRON.format(file=readiness)]}})
    )
    out, _ = compile_plan(tmp_path, {name: service_under_test(name, data, host_id)})
    address = tmp_path / "notify.sock"
    env = {"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "1000000", CANARY: "1"}
    with contextlib.ExitStack() as stack:
        messages = stack.enter_context(notify_receiver(address)) if notify_socket == "read" else []
        daemon = stack.enter_context(
            running_daemon(tmp_path, out, [name], "--host-services", str(hosts), env=env)
        )
        check_runs_as_compiled(daemon, out, name, data)
        assert environ_of(readiness) == [f"{k}={v}" for k, v in CHILD_ENVIRONMENT.items()]
        if notify_socket == "read":
            # The executor itself speaks for itself to its manager.
            wait_for(lambda: any(m.startswith("READY=1") for m in messages), 15, "READY=1")
            wait_for(lambda: "WATCHDOG=1" in messages, 15, "WATCHDOG=1")
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []
