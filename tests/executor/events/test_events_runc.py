"""A runc failure's event says the cause, not runc's log line, with real runc. Needs root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    compile_plan,
    running_daemon,
    unique,
)

pytestmark = pytest.mark.runc


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
