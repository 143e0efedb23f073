"""What an operator expects, tried as a new user would (issue 16 item 7), with real runc."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.executor.realrunc import (
    IDLE,
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
