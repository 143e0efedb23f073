"""Stopping services and the executor with real runc: escalation, Ctrl-C, a vanished terminal, a
created container never started. Needs root."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.executor.realrunc import (
    SLEEP_LOOP,
    Daemon,
    alive,
    bind,
    compile_gated,
    compile_plan,
    runc_state,
    running_daemon,
    running_pid,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


# Records each signal it gets in /data/signals; exits on TERM.
SIGNAL_RECORDER = (
    "trap 'echo INT >> /data/signals' INT; "
    "trap 'echo TERM >> /data/signals; exit 0' TERM; "
    f"echo up; {SLEEP_LOOP}"
)


def test_stop_escalates_to_sigkill_for_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    name = unique("stubborn")
    script = "trap '' TERM; echo ready; while :; do sleep 0.2; done"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        started = time.monotonic()
        assert daemon.control("stop", f"ext-{name}")["message"] == f"Service 'ext-{name}' stopped"
        assert time.monotonic() - started >= 1.0
        service = daemon.service(f"ext-{name}")
        assert service["state"] == "Finished"
        messages = [e["message"] for e in service["events"]]
        assert messages[0] == "Service stopped"
        assert messages[1].startswith(f"Sending SIGKILL to task ext-{name}")
        assert messages[2].startswith(f"Sending SIGTERM to task ext-{name}")
        assert [
            t for t in traces(daemon.state_dir, [name]) if "cgroup" in t or "container" in t
        ] == []


def test_stopping_a_created_never_started_service_leaves_nothing(tmp_path: Path) -> None:
    name = unique("neverstarted")
    out, _never_created = compile_gated(tmp_path, name)
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid_file = daemon.state_dir / "bundles" / name / "init.pid"
        wait_for(lambda: runc_state(daemon.state_dir, f"ext-{name}") == "created", 10, "created")
        wait_for(pid_file.exists, 10, "the init's PID file")
        init = int(pid_file.read_text())
        daemon.control("stop", f"ext-{name}")
        assert daemon.state(f"ext-{name}") == "Skipped"
        assert traces(daemon.state_dir, [name]) == []
        # The stopped init was reaped by the executor: not even a zombie is left.
        assert not psutil.pid_exists(init)
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_ctrl_c_reaches_only_the_executor_which_stops_gracefully(tmp_path: Path) -> None:
    name = unique("ctrlc")
    data = tmp_path / "data"
    data.mkdir()
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, SIGNAL_RECORDER, mounts=[bind(data, "/data")])}
    )
    # As a terminal runs a foreground job: its own process group, which Ctrl-C signals.
    with running_daemon(tmp_path, out, [name], new_session=True) as daemon:
        pid = running_pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        assert os.getsid(pid) != os.getsid(daemon.process.pid)
        os.killpg(daemon.process.pid, signal.SIGINT)
        assert daemon.process.wait(30) == 0
        # The container saw no SIGINT, and its TERM handler ran (the graceful stop).
        assert (data / "signals").read_text() == "TERM\n"
        assert "Sending SIGKILL" not in daemon.stderr()
    assert traces(tmp_path / "state", [name]) == []


def test_a_vanished_terminal_neither_kills_nor_stalls_the_executor(tmp_path: Path) -> None:
    # An SSH session that closes: SIGHUP, then every write to the terminal fails.
    name = unique("hangup")
    script = f"while :; do echo tick; sleep 0.2 & wait $!; done & {SLEEP_LOOP}"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script, log_to_console=True)})
    daemon = Daemon(tmp_path, out, [name])
    try:
        daemon.process = subprocess.Popen(
            daemon.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert daemon.process.stdout is not None and daemon.process.stderr is not None
        daemon.process.stdout.close()
        daemon.process.stderr.close()
        wait_for(daemon._answers, 20, "the control socket")
        pid = running_pid(daemon, f"ext-{name}")
        daemon.process.send_signal(signal.SIGHUP)
        restarted = daemon.extsvc("service", name, "restart")
        assert restarted.returncode == 0, restarted.stderr
        assert running_pid(daemon, f"ext-{name}") != pid
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.force_cleanup()


def test_ctrl_c_in_the_stop_grace_says_what_it_waits_for_and_a_third_kills_at_once(
    tmp_path: Path,
) -> None:
    base, top = unique("base"), unique("top")
    services = {  # both ignore SIGTERM: only SIGKILL ends them
        base: shell_service(base, SLEEP_LOOP),
        top: shell_service(top, SLEEP_LOOP, depends=[{"service": f"ext-{base}"}]),
    }
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, [base, top], "--stop-timeout", "5m") as daemon:
        pids = [daemon.wait_state(f"ext-{n}", "Running")["pid"] for n in (base, top)]
        process = daemon.process
        assert process is not None
        process.send_signal(signal.SIGINT)
        sigterm = f"Sending SIGTERM to task ext-{top}"
        wait_for(lambda: sigterm in daemon.stderr(), 10, "the SIGTERM to the dependent")
        process.send_signal(signal.SIGINT)
        hint = "press Ctrl-C (or send SIGINT/SIGTERM) once more to kill them at once"
        wait_for(lambda: hint in daemon.stderr(), 10, "what the stop waits for")
        said = daemon.stderr()
        # The shutdown bound: two dependency levels stop one after the other, 5m each,
        # then two runtime calls (30s each) and 5s: 11m5s.
        assert re.search(
            r"extsvc: stopping: waiting for 2 service\(s\), at most 11m\d+s more:", said
        )
        assert re.search(
            rf"extsvc:   ext-{top} \(PID {pids[1]}\): "
            r"SIGTERM sent \d+(ms|s) ago, SIGKILL in (4m5\ds|5m0s)",
            said,
        ), said
        assert f"extsvc:   ext-{base}: waits for ext-{top} to stop first" in said
        assert alive(pids[0]) and alive(pids[1])
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        assert time.monotonic() - began < 20  # not the 5 minutes of grace
        said = daemon.stderr()
        assert "extsvc: killing 2 service(s) at once (SIGKILL)" in said
        for name in (base, top):
            assert re.search(
                rf"ext-{name} \[Stopping\]: Sending SIGKILL to task ext-{name} .*: "
                "the executor was told to kill at once",
                said,
            )
        assert not alive(pids[0]) and not alive(pids[1])
        assert "all services stopped" in said
    assert traces(tmp_path / "state", [base, top]) == []
