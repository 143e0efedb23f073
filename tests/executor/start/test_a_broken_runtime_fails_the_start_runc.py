"""A runtime that hangs, fails or is missing fails the start with its reason, with real runc: every
runtime call is bounded and a hung one is killed. Needs root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from extsvc.compiler.format.exitcodes import EXIT_ENVIRONMENT
from tests.executor.faults import RUNTIME_TIMEOUT, FaultyRuntime
from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    traces,
    unique,
)

pytestmark = pytest.mark.runc


@pytest.mark.parametrize("hung", ["create", "start"])
def test_a_hung_runtime_fails_the_start_and_is_killed(tmp_path: Path, hung: str) -> None:
    name = unique(f"hung-{hung}")
    runtime = FaultyRuntime(tmp_path).hang(hung)
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE, restart="never")})
    with running_daemon(
        tmp_path, out, [name], "--runtime", str(runtime.path), *RUNTIME_TIMEOUT
    ) as daemon:
        service = daemon.wait_state(f"ext-{name}", "Failed", timeout=30)
        failure = next(
            m for m in reversed(messages(service)) if m.startswith("Failed to start task")
        )
        assert f"runc {hung} did not finish within 3s" in failure
        assert "--runtime-timeout" in failure
        assert runtime.hangs_seen() == 1
        assert runtime.hung_processes() == []
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_a_failing_runtime_fails_the_start_with_its_reason(tmp_path: Path) -> None:
    name = unique("fail-create")
    runtime = FaultyRuntime(tmp_path).fail("create")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE, restart="never")})
    with running_daemon(tmp_path, out, [name], "--runtime", str(runtime.path)) as daemon:
        service = daemon.wait_state(f"ext-{name}", "Failed")
        failure = next(
            m for m in reversed(messages(service)) if m.startswith("Failed to start task")
        )
        assert "runc create exited with code 1" in failure
        assert "fake runtime: create refused" in failure
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [name]) == []


def test_runtime_binary_missing_is_one_clear_error(tmp_path: Path) -> None:
    name = unique("no-runc")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    run = subprocess.run(
        [*EXTSVC, "run", str(out), "--state-dir", str(tmp_path / "state"),
         "--log-dir", str(tmp_path / "logs"), "--runtime", str(tmp_path / "no-such-runc")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == EXIT_ENVIRONMENT
    assert run.stderr == (
        f"extsvc: error: container runtime '{tmp_path / 'no-such-runc'}' not found: "
        "install runc (apt-get install runc) or pass --runtime PATH\n"
    )
    assert "Traceback" not in run.stderr
