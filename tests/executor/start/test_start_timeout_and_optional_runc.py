"""x-extsvc start timeouts and optional services with real runc containers. Needs root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.executor.realrunc import (
    IDLE,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    unique,
)

pytestmark = pytest.mark.runc


def test_a_start_timeout_fails_with_what_it_waited_for(tmp_path: Path) -> None:
    name = unique("late")
    missing = tmp_path / "never-appears"
    yaml = shell_service(
        name, IDLE, depends=[{"path": str(missing)}], extsvc={"startTimeout": "1s"}
    )
    out, _ = compile_plan(tmp_path, {name: yaml})
    with running_daemon(tmp_path, out, [name]) as daemon:
        failed = daemon.wait_state(f"ext-{name}", "Failed")
        assert messages(failed)[-1] == (
            f'Start timeout (1s) reached: still waiting for path "{missing}"'
        )
        assert failed["runs"] == 0
        assert daemon.stop() == 0


def test_a_dependent_of_a_failed_optional_service_is_skipped(tmp_path: Path) -> None:
    extra, user = unique("extra"), unique("user")
    services = {
        extra: shell_service(extra, IDLE, depends=[{"path": str(tmp_path / "no-device")}],
                             extsvc={"optional": True, "startTimeout": "500ms"}),
        user: shell_service(user, IDLE, depends=[{"service": f"ext-{extra}"}]),
    }  # fmt: skip
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, [extra, user]) as daemon:
        skipped = daemon.wait_state(f"ext-{user}", "Skipped")
        assert messages(skipped)[-1].startswith(
            f'Service skipped: optional dependency "ext-{extra}" failed: Start timeout (500ms)'
        )
        assert daemon.state(f"ext-{extra}") == "Failed"
        assert daemon.stop() == 0
