"""What an operator expects, tried as a new user would (issue 16 item 7), with real runc."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    SLEEP_LOOP,
    alive,
    bind,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_log_rotation_size_and_count_are_options_of_run(tmp_path: Path) -> None:
    name = unique("chatty")
    service = f"ext-{name}"
    script = f'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "line $i of the chatty service"; done; {IDLE}'  # noqa: E501
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    options = ("--log-max-size", "4Ki", "--log-max-files", "2")
    with running_daemon(tmp_path, out, [name], *options) as daemon:
        wait_for(lambda: "line 300 of the chatty service" in daemon.logs(service), 15, "line 300")
        files = sorted(p.name for p in (tmp_path / "logs").iterdir())
        assert files == [f"{service}.log", f"{service}.log.1"]
        for path in (tmp_path / "logs").iterdir():
            assert 0 < path.stat().st_size <= 4096
        kept = daemon.extsvc("logs", name, "--tail", "2", check=True).stdout.splitlines()
        assert kept == ["line 299 of the chatty service", "line 300 of the chatty service"]
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_failed_starts_count_as_restarts_and_run_numbers_keep_increasing(
    tmp_path: Path,
) -> None:
    name = unique("flaky")
    service = f"ext-{name}"
    data = tmp_path / "data"
    data.mkdir()
    # Its entrypoint does not exist yet: every start fails (runc create) until it does.
    yaml = json.dumps(
        {
            "name": name,
            "container": {"entrypoint": "/data/run.sh", "mounts": [bind(data, "/data")]},
            "restart": "always",
        }
    )
    out, _ = compile_plan(tmp_path, {name: yaml})
    with running_daemon(tmp_path, out, [name]) as daemon:
        wait_for(lambda: daemon.service(service)["runs"] >= 2, 20, "two failed starts")
        script = data / "run.sh"
        script.write_text("#!/bin/sh\necho ran\nexit 1\n")
        script.chmod(0o755)
        wait_for(lambda: daemon.logs(service).count("ran") >= 2, 20, "two runs that ran")
        detail = daemon.service(service)
        assert detail["restarts"] == detail["runs"] - 1 >= 3
        shown = daemon.extsvc("service", name, check=True).stdout
        assert re.search(r"RESTARTS\s+(\d+)", shown)
        assert int(re.search(r"RESTARTS\s+(\d+)", shown)[1]) >= detail["restarts"]  # type: ignore[index]
        markers = [
            (int(m[1]), m[2])
            for r in daemon.records(service)
            if (
                m := re.fullmatch(rf"-- {service} run (\d+) (started|failed to start).*", r["line"])
            )
        ]
        numbers = sorted({number for number, _ in markers})
        assert numbers == list(
            range(1, len(numbers) + 1)
        )  # 1, 2, 3, ...: none twice, none left out
        first_started = min(n for n, what in markers if what == "started")
        assert all(what == "failed to start" for n, what in markers if n < first_started)
        assert first_started >= 3
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_a_line_without_newline_reaches_log_console_and_followers_marked_partial(
    tmp_path: Path,
) -> None:
    name = unique("prompt")
    service = f"ext-{name}"
    data = tmp_path / "data"
    data.mkdir()
    script = f"printf 'Password: '; until [ -e /data/go ]; do sleep 0.1; done; echo typed; {IDLE}"
    yaml = shell_service(name, script, mounts=[bind(data, "/data")], log_to_console=True)
    out, _ = compile_plan(tmp_path, {name: yaml})
    with running_daemon(tmp_path, out, [name]) as daemon:
        follower = subprocess.Popen(
            [*EXTSVC, "logs", name, "-f", "--state-dir", str(daemon.state_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(
                lambda: any(r["stream"] == "partial" for r in daemon.records(service)),
                10,
                "the prompt in the log",
            )
            records = daemon.records(service)
            started, piece = records[-2:]
            assert (piece["stream"], piece["line"]) == ("partial", "Password: ")
            waited = _seconds(piece["time"]) - _seconds(started["time"])
            assert waited >= 0.9  # held back for the delay (1 s), not sent at every write
            (data / "go").touch()
            wait_for(lambda: "typed" in daemon.logs(service), 10, "the rest of the line")
            records = daemon.records(service)
            assert [(r["stream"], r["line"]) for r in records[-2:]] == [
                ("partial", "Password: "),
                ("output", "typed"),
            ]
            stored = (tmp_path / "logs" / f"{service}.log").read_text().splitlines()
            assert stored[-2].split(" ", 2)[1:] == ["partial", "Password: "]
            shown = daemon.extsvc("logs", name, check=True).stdout.splitlines()
            assert shown[-2:] == ["Password: \\", "typed"]
            assert daemon.stop() == 0
            followed, _ = follower.communicate(timeout=30)
        finally:
            follower.kill()
        lines = followed.splitlines()
        assert lines[lines.index("typed") - 1 :][:2] == ["Password: \\", "typed"]
        assert lines.count("Password: \\") == 1
        # The stop may add the shell's own "Terminated" after these: look up the line, not the end.
        console = daemon.stdout().splitlines()
        typed = console.index(f"{service}: typed")
        assert console[typed - 1 : typed + 1] == [f"{service}: Password: \\", f"{service}: typed"]
    assert traces(tmp_path / "state", [name]) == []


def _seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


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
