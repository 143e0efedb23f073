"""Issue 8 with real runc: each problem observed on the executor is a test here. Needs root."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import jsonschema
import psutil
import pytest

from tests.executor.realrunc import (
    EXTSVC,
    SLEEP_LOOP,
    Daemon,
    bind,
    compile_plan,
    notify_receiver,
    recompile,
    running_daemon,
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
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
STATUS_SCHEMA = json.loads(
    (Path(__file__).parents[3] / "docs" / "service-status.schema.json").read_text()
)


def check_shape(document: object, definition: str) -> None:
    """``document`` has the documented shape (docs/service-status.schema.json)."""
    schema = {"$ref": f"#/$defs/{definition}", "$defs": STATUS_SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(document)


def _pid(daemon: Daemon, service_id: str) -> int:
    return int(daemon.wait_state(service_id, "Running")["pid"])


def test_sighup_reloads_and_never_kills(tmp_path: Path) -> None:
    name = unique("hup")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid = _pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded: 1 unchanged" in daemon.stderr(), 10, "the reload")
        assert daemon.process.poll() is None
        assert _pid(daemon, f"ext-{name}") == pid
        assert daemon.stop() == 0


def test_sigusr1_prints_what_every_task_waits_for_and_changes_nothing(tmp_path: Path) -> None:
    name = unique("usr1")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid = _pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: "extsvc: SIGUSR1: " in daemon.stderr(), 10, "the task dump")
        dump = daemon.stderr().split("extsvc: SIGUSR1: ", 1)[1]
        assert re.match(r"\d+ task\(s\)\n", dump)
        # The service's lifecycle, waiting for its container to end.
        lifecycle = dump.split(f"task 'lifecycle ext-{name}':\n", 1)[1].split("\ntask ")[0]
        assert "runner.py" in lifecycle
        assert "in _until_stop" in lifecycle
        assert "awaiting <" in lifecycle.splitlines()[-1]
        assert daemon.process.poll() is None
        assert _pid(daemon, f"ext-{name}") == pid
        assert daemon.stop() == 0


def test_ctrl_c_reaches_only_the_executor_which_stops_gracefully(tmp_path: Path) -> None:
    name = unique("ctrlc")
    data = tmp_path / "data"
    data.mkdir()
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, SIGNAL_RECORDER, mounts=[bind(data, "/data")])}
    )
    # As a terminal runs a foreground job: its own process group, which Ctrl-C signals.
    with running_daemon(tmp_path, out, [name], new_session=True) as daemon:
        pid = _pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        assert os.getsid(pid) != os.getsid(daemon.process.pid)
        os.killpg(daemon.process.pid, signal.SIGINT)
        assert daemon.process.wait(30) == 0
        # The container saw no SIGINT, and its TERM handler ran (the graceful stop).
        assert (data / "signals").read_text() == "TERM\n"
        assert "Sending SIGKILL" not in daemon.stderr()
    assert traces(tmp_path / "state", [name]) == []


def test_a_second_executor_never_touches_the_first_ones_service(tmp_path: Path) -> None:
    name = unique("shared")
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    out1, _ = compile_plan(first_dir, {name: shell_service(name, SLEEP_LOOP)})
    out2, _ = compile_plan(second_dir, {name: shell_service(name, SLEEP_LOOP, restart="never")})
    with running_daemon(first_dir, out1, [name]) as first:
        pid = _pid(first, f"ext-{name}")
        # No names to clean up for the second: its teardown must not empty the shared cgroup.
        with running_daemon(second_dir, out2, []) as second:
            failed = second.wait_state(f"ext-{name}", "Failed")
            message = failed["events"][0]["message"]
            assert f"cgroup /system/extensions/{name} already holds processes" in message
            assert str(pid) in message
            assert psutil.pid_exists(pid)
            assert second.stop() == 0
        # The second executor came and went: the first one's container runs on, untouched.
        assert first.state(f"ext-{name}") == "Running"
        assert _pid(first, f"ext-{name}") == pid
        assert first.stop() == 0


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


def test_restart_of_a_failing_service_exits_1_with_the_failure(tmp_path: Path) -> None:
    name, good = unique("fails"), unique("good")
    data = tmp_path / "data"
    data.mkdir()
    # Runs fine until /data/broken exists; then it dies a second and a half after starting.
    script = f"if [ -e /data/broken ]; then sleep 1.5; echo no config; exit 1; fi; {SLEEP_LOOP}"
    out, _ = compile_plan(
        tmp_path,
        {
            name: shell_service(name, script, mounts=[bind(data, "/data")]),
            good: shell_service(good, SLEEP_LOOP),
        },
    )
    with running_daemon(tmp_path, out, [name, good]) as daemon:
        _pid(daemon, f"ext-{name}")
        (data / "broken").touch()
        failed = daemon.extsvc("service", name, "restart")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert failed.stderr.startswith(
            f'extsvc: error: ext-{name} [Waiting]: task "ext-{name}" failed: exit code 1 '
            '(last log "no config")'
        )
        fine = daemon.extsvc("service", good, "restart")
        assert fine.returncode == 0, fine.stderr
        assert fine.stdout.startswith(f"ext-{good}: Started task ext-{good} (PID ")
        stopped = daemon.extsvc("service", good, "stop")
        assert stopped.returncode == 0
        assert daemon.state(f"ext-{good}") == "Finished"
        detail = daemon.extsvc("service", good, "status", "-o", "json")
        shown = json.loads(detail.stdout)
        check_shape(shown, "service")
        check_shape(json.loads(daemon.extsvc("services", "-o", "json").stdout), "services")
        assert shown["health"] is None
        assert re.fullmatch(STAMP, shown["lastChange"])
        assert daemon.stop() == 0


def test_reload_restarts_only_the_changed_service(tmp_path: Path) -> None:
    changed, same = unique("changed"), unique("same")
    out, _ = compile_plan(
        tmp_path,
        {
            changed: shell_service(changed, f"echo v1; {SLEEP_LOOP}"),
            same: shell_service(same, SLEEP_LOOP),
        },
    )
    with running_daemon(tmp_path, out, [changed, same]) as daemon:
        before = {n: _pid(daemon, f"ext-{n}") for n in (changed, same)}
        recompile(tmp_path, changed, shell_service(changed, f"echo v2; {SLEEP_LOOP}"))
        listed = daemon.extsvc("service")
        assert "changed on disk since it was loaded; run `extsvc reload`" in listed.stderr
        reloaded = daemon.extsvc("reload")
        assert reloaded.returncode == 0, reloaded.stderr
        assert reloaded.stdout.strip() == f"reloaded: restarted ext-{changed}; 1 unchanged"
        after = {n: _pid(daemon, f"ext-{n}") for n in (changed, same)}
        assert after[same] == before[same]
        assert after[changed] != before[changed]
        wait_for(lambda: "v2" in daemon.logs(f"ext-{changed}"), 10, "the new bundle's output")
        assert "changed on disk" not in daemon.extsvc("service").stderr
        # A plan that fails validation is refused with its diagnostics; nothing is touched.
        plan = out / "plan.json"
        plan.write_text(plan.read_text().replace('"restart": "always"', '"restart": "sometimes"'))
        refused = daemon.extsvc("reload")
        assert refused.returncode == 1
        assert "reload refused, the running services are kept" in refused.stderr
        assert re.search(r"plan\.json:\d+:\d+: .*sometimes", refused.stderr)
        assert {n: _pid(daemon, f"ext-{n}") for n in (changed, same)} == after
        assert daemon.stop() == 0


def test_sd_notify_messages_reach_the_notify_socket(tmp_path: Path) -> None:
    name = unique("notify")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
    with notify_receiver(tmp_path / "notify.sock") as messages:

        def seen(prefix: str, after: int = 0) -> int:
            """Index of the first message from ``after`` on that starts with ``prefix``."""
            found: list[int] = []

            def arrived() -> bool:
                later = enumerate(messages[after:], after)
                found[:] = [i for i, message in later if message.startswith(prefix)]
                return bool(found)

            wait_for(arrived, 30, f"{prefix} on the notify socket: {messages}")
            return found[0]

        with running_daemon(tmp_path, out, [name], env=env) as daemon:
            ready = seen("READY=1")
            assert "STATUS=running 1 service(s)" in messages[ready]
            # READY=1 came after every service began its first attempt, and the service
            # runs: runc was not handed the executor's NOTIFY_SOCKET (it would wait for
            # the container's READY=1, for ever).
            assert daemon.state(f"ext-{name}") != "Initialized"
            daemon.wait_state(f"ext-{name}", "Running")
            seen("WATCHDOG=1", ready)
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGHUP)
            reloading = seen("RELOADING=1", ready)
            seen("READY=1", reloading)
            assert daemon.stop() == 0
            seen("STOPPING=1", reloading)


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
        pid = _pid(daemon, f"ext-{name}")
        daemon.process.send_signal(signal.SIGHUP)
        restarted = daemon.extsvc("service", name, "restart")
        assert restarted.returncode == 0, restarted.stderr
        assert _pid(daemon, f"ext-{name}") != pid
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.force_cleanup()


def test_a_runc_failure_event_says_the_cause_not_runcs_log_line(tmp_path: Path) -> None:
    name = unique("noexec")
    text = json.dumps(
        {"name": name, "container": {"entrypoint": "/bin/missing"}, "restart": "never"}
    )
    out, _ = compile_plan(tmp_path, {name: text})
    with running_daemon(tmp_path, out, [name]) as daemon:
        failed = daemon.wait_state(f"ext-{name}", "Failed")
        message = failed["events"][0]["message"]
        assert 'exec: "/bin/missing"' in message and "no such file or directory" in message
        assert "level=error" not in message and "runc create failed" not in message
        # The log keeps runc's whole line, and marks the failed start.
        records = daemon.records(f"ext-{name}")
        assert any("level=error" in r["line"] for r in records)
        assert records[-1]["line"].startswith(f"-- ext-{name} run 1 failed to start: ")
        assert daemon.stop() == 0
