"""Restarts with real runc containers: policies, limits, the crash-loop interval, a fresh rootfs.
Needs root."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    IDLE,
    SLEEP_LOOP,
    STAMP,
    bind,
    check_shape,
    compile_plan,
    messages,
    running_daemon,
    running_pid,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


COUNT_RUN = (
    'n=$(( $(cat /data/count 2>/dev/null || echo 0) + 1 )); echo $n > /data/count; echo "run $n"'
)


def test_a_service_exceeding_its_restart_limit_ends_failed(tmp_path: Path) -> None:
    name = unique("crashy")
    yaml = shell_service(
        name, "echo crashing; exit 3", extsvc={"restartLimit": {"count": 2, "window": "1m"}}
    )
    out, _ = compile_plan(tmp_path, {name: yaml})
    with running_daemon(tmp_path, out, [name]) as daemon:
        failed = daemon.wait_state(f"ext-{name}", "Failed", timeout=30)
        assert failed["runs"] == 3
        assert messages(failed)[-1] == (
            f'restart limit reached (2 failures in 1m): task "ext-{name}" failed: '
            'exit code 3 (last log "crashing")'
        )
        assert daemon.stop() == 0


def test_restart_policies_count_the_runs(tmp_path: Path) -> None:
    names = {policy: unique(policy.lower()) for policy in ("always", "never", "untilSuccess")}
    data = {policy: tmp_path / f"data-{policy}" for policy in names}
    for directory in data.values():
        directory.mkdir()
    scripts = {
        "always": f"{COUNT_RUN}; exit 0",
        "never": f"{COUNT_RUN}; exit 1",
        "untilSuccess": f'{COUNT_RUN}; [ "$n" -ge 3 ]',
    }
    services = {
        names[p]: shell_service(names[p], scripts[p], restart=p, mounts=[bind(data[p], "/data")])
        for p in names
    }
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, list(names.values())) as daemon:
        until = daemon.wait_state(f"ext-{names['untilSuccess']}", "Finished")
        assert until["runs"] == 3
        assert (data["untilSuccess"] / "count").read_text().strip() == "3"
        never = daemon.wait_state(f"ext-{names['never']}", "Failed")
        assert never["runs"] == 1
        assert never["events"][0]["message"] == (
            f'task "ext-{names["never"]}" failed: exit code 1 (last log "run 1")'
        )
        wait_for(lambda: daemon.service(f"ext-{names['always']}")["runs"] >= 4, 10, "4 runs")
        time.sleep(0.5)
        assert daemon.service(f"ext-{names['never']}")["runs"] == 1
        assert daemon.service(f"ext-{names['untilSuccess']}")["runs"] == 3
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", list(names.values())) == []


def test_crash_loop_is_bounded_by_the_restart_interval(tmp_path: Path) -> None:
    name = unique("crash")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, "echo crashing; exit 3")})
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(f"ext-{name}", "Waiting", "Preparing", "Running")
        started = time.monotonic()
        first = daemon.service(f"ext-{name}")["runs"]
        # It keeps trying (the timeout only turns a stop into a failure)...
        wait_for(lambda: daemon.service(f"ext-{name}")["runs"] >= first + 2, 30, "2 restarts")
        runs = daemon.service(f"ext-{name}")["runs"] - first
        elapsed = time.monotonic() - started
        # ...but never faster than one run per 200ms interval (plus the run in progress);
        # a slow machine only lowers the count.
        assert runs <= elapsed / 0.2 + 1
        messages = [e["message"] for e in daemon.service(f"ext-{name}")["events"]]
        assert any(
            'exit code 3 (last log "crashing"); restarting forever in 200ms' in m for m in messages
        )


def test_writeable_rootfs_writes_are_gone_after_a_restart(tmp_path: Path) -> None:
    name = unique("scratch")
    script = (
        'if [ -e /scribble ]; then echo "rootfs kept writes"; else echo "fresh rootfs"; fi; '
        f"echo data > /scribble && echo wrote; {IDLE}"
    )
    readonly = unique("readonly")
    out, base = compile_plan(
        tmp_path,
        {
            name: shell_service(name, script, writeable_rootfs=True),
            readonly: shell_service(readonly, f"touch /scribble || echo read-only; {IDLE}"),
        },
    )
    with running_daemon(tmp_path, out, [name, readonly]) as daemon:
        daemon.wait_state(f"ext-{name}", "Running")
        wait_for(lambda: "wrote" in daemon.logs(f"ext-{name}"), 5, "first write")
        daemon.control("restart", f"ext-{name}")
        wait_for(lambda: daemon.logs(f"ext-{name}").count("wrote") == 2, 10, "second write")
        assert daemon.logs(f"ext-{name}").count("fresh rootfs") == 2
        assert "rootfs kept writes" not in daemon.logs(f"ext-{name}")
        assert not (base / name / "scribble").exists()
        wait_for(lambda: "read-only" in daemon.logs(f"ext-{readonly}"), 5, "read-only rootfs")


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
        running_pid(daemon, f"ext-{name}")
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
        wait_for(lambda: daemon.service(service)["runs"] >= 2, 60, "two failed starts")
        script = data / "run.sh"
        script.write_text("#!/bin/sh\necho ran\nexit 1\n")
        script.chmod(0o755)
        wait_for(lambda: daemon.logs(service).count("ran") >= 2, 60, "two runs that ran")
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
