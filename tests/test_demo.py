"""`make demo` (examples/demo.py): it runs, and two of them on one host do not collide."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


@pytest.mark.runc
def test_two_demos_on_one_host_run_side_by_side_and_leave_nothing() -> None:
    """Service names were fixed, and cgroups (/system/extensions/<name>) are the host's:
    a second demo, or one beside a real `extsvc run` of the examples, collided."""
    environment = {**os.environ, "EXTSVC_DEMO_SECONDS": "4"}
    demos = [
        subprocess.Popen(
            [sys.executable, str(DEMO)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        for _ in range(2)
    ]
    outputs = [demo.communicate(timeout=180)[0] for demo in demos]

    suffixes = set()
    for demo, output in zip(demos, outputs, strict=True):
        assert demo.returncode == 0, output
        [suffix] = set(re.findall(r"ext-hello-world-([0-9a-f]{6})", output))
        suffixes.add(suffix)
        assert f"Started task ext-hello-world-{suffix}" in output
        assert re.search(r"^hello-world: tick \d+$", output, re.M)  # its log, via extsvc logs
        assert "nothing left behind" in output
    assert len(suffixes) == 2
    for suffix in suffixes:
        for name in ("hello-world", "greeter", "setup-once"):
            assert not list(Path("/sys/fs/cgroup").glob(f"*/system/extensions/{name}-{suffix}"))
