"""Control with real runc: SIGUSR1 prints what every task waits for and changes nothing; without
root, control commands say so in one line. `check_shape` checks a document against docs/service-
status.schema.json. Needs root."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    EXTSVC,
    SLEEP_LOOP,
    compile_plan,
    running_daemon,
    running_pid,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_sigusr1_prints_what_every_task_waits_for_and_changes_nothing(tmp_path: Path) -> None:
    name = unique("usr1")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid = running_pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: "extsvc: SIGUSR1: " in daemon.stderr(), 10, "the task dump")
        dump = daemon.stderr().split("extsvc: SIGUSR1: ", 1)[1]
        assert re.match(r"\d+ task\(s\)\n", dump)
        # The service's lifecycle, waiting for its container to end.
        lifecycle = dump.split(f"task 'lifecycle ext-{name}':\n", 1)[1].split("\ntask ")[0]
        assert "runner.py" in lifecycle
        assert re.search(r"service/tasks\.py:\d+ in until$", lifecycle, re.MULTILINE)
        assert "awaiting <" in lifecycle.splitlines()[-1]
        assert daemon.process.poll() is None
        assert running_pid(daemon, f"ext-{name}") == pid
        assert daemon.stop() == 0


def test_without_root_control_commands_say_so_in_one_line(tmp_path: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for args in (["service"], ["services"], ["service", "x", "restart"], ["reload"]):
        result = subprocess.run(
            [*nobody, *EXTSVC, *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 3, result.stderr
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert "needs root" in result.stderr and "Traceback" not in result.stderr
