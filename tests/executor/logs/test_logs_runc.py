"""Service output with real runc: exact interleaving, the console, `extsvc logs` without a daemon,
`logs -f` to the end, the log options of `run`, partial lines. Needs root."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    SLEEP_LOOP,
    STAMP,
    bind,
    check_shape,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def _seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def test_log_to_console_lines_reach_the_console(tmp_path: Path) -> None:
    loud, quiet = unique("loud"), unique("quiet")
    out, _ = compile_plan(
        tmp_path,
        {
            loud: shell_service(loud, f"echo to the console; {IDLE}", log_to_console=True),
            quiet: shell_service(quiet, f"echo only in the file; {IDLE}"),
        },
    )
    with running_daemon(tmp_path, out, [loud, quiet], "--console", "stdout") as daemon:
        wait_for(lambda: f"ext-{loud}: to the console" in daemon.stdout(), 10, "console line")
        wait_for(lambda: "only in the file" in daemon.logs(f"ext-{quiet}"), 5, "quiet log")
        assert "only in the file" not in daemon.stdout()


def test_stdout_and_stderr_keep_their_exact_interleaving(tmp_path: Path) -> None:
    name = unique("interleave")
    script = (
        'i=0; while [ $i -lt 100 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; ' + IDLE
    )
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        wait_for(lambda: len(daemon.logs(f"ext-{name}")) >= 200, 15, "200 lines")
        expected = [f"{stream} {i}" for i in range(100) for stream in ("out", "err")]
        assert daemon.logs(f"ext-{name}")[:200] == expected
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_logs_stand_on_their_own_after_the_daemon_is_gone(tmp_path: Path) -> None:
    name = unique("logs")
    script = "echo starting; echo to stderr >&2; sleep 0.2; exit 3"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script, restart="untilSuccess")})
    with running_daemon(tmp_path, out, [name]) as daemon:
        wait_for(lambda: daemon.logs(f"ext-{name}").count("starting") >= 2, 15, "two runs")
        daemon.kill()  # no clean stop: a crash
        # Only --state-dir: the log dir is what that daemon recorded.
        plain = daemon.extsvc("logs", name)
        assert plain.returncode == 0, plain.stderr
        lines = plain.stdout.splitlines()
        assert lines[0] == f"-- ext-{name} run 1 started --"
        # One pipe: both streams are there, in the order the shell flushed them.
        assert sorted(lines[1:3]) == ["starting", "to stderr"]
        assert lines[3:5] == ["-- exited with code 3 --", f"-- ext-{name} run 2 started --"]
        stamped = daemon.extsvc("logs", f"ext-{name}", "--timestamps", "--tail", "2")
        assert len(stamped.stdout.splitlines()) == 2
        assert all(re.match(STAMP + " ", line) for line in stamped.stdout.splitlines())
        everything = daemon.extsvc("logs", "--tail", "-1", "-o", "json")
        records = [json.loads(line) for line in everything.stdout.splitlines()]
        for record in records:
            check_shape(record, "logRecord")
        assert {r["service"] for r in records} == {f"ext-{name}"}
        assert {r["stream"] for r in records} == {"output", "extsvc"}
        assert all(re.fullmatch(STAMP, r["time"]) for r in records)
        recent = daemon.extsvc("logs", name, "--since", "10m")
        assert recent.stdout == plain.stdout
        unknown = daemon.extsvc("logs", name[:-1])
        assert unknown.returncode == 1
        assert f"did you mean 'ext-{name}'" in unknown.stderr


def test_logs_follow_drains_the_last_lines_and_says_why_it_ended(tmp_path: Path) -> None:
    name = unique("follow")
    script = f"trap 'echo last words; exit 0' TERM; echo hello; {SLEEP_LOOP}"
    out, _ = compile_plan(tmp_path, {name: shell_service(name, script)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        wait_for(lambda: "hello" in daemon.logs(f"ext-{name}"), 10, "hello")
        follower = subprocess.Popen(
            [*daemon.argv()[:3], "logs", name, "-f", "--state-dir", str(daemon.state_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert follower.stdout is not None
        seen = [follower.stdout.readline(), follower.stdout.readline()]  # connected: it printed
        assert seen[1] == "hello\n"
        assert daemon.stop() == 0
        stdout, stderr = follower.communicate(timeout=30)
        assert follower.returncode == 0, stderr
        # The last lines the service wrote while stopping, then the run's end marker.
        # (busybox sh may also report its killed `sleep`, before or after.)
        lines = stdout.splitlines()
        assert lines[-1] == "-- stopped, exited with code 0 --"
        assert "last words" in lines
        assert stderr == "extsvc: end of logs: the executor stopped\n"


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
