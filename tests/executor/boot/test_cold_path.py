"""The `extsvc run` path stays light (boot waits for it): what it must not import."""

from __future__ import annotations

import os
import subprocess
import sys

# What `extsvc run` imports: the entry, the argparse CLI, the start-up, the daemon.
RUN_PATH = (
    "import extsvc.entry, extsvc.executor.cli.run, extsvc.executor.daemon.startup,"
    " extsvc.executor.daemon.main"
)
# A plan is JSON (no YAML loader); it is validated by schemacheck (no jsonschema);
# psutil is for status requests and network checks; ctypes.util spawns ldconfig;
# click (~20 ms) is for the other commands: `run` is parsed with argparse.
HEAVY = {"yaml", "jsonschema", "psutil", "lark", "ctypes.util", "click"}
# Before the first `runc create` is spawned (executor.daemon.startup): not even asyncio.
START_UP = "import extsvc.entry, extsvc.executor.cli.run, extsvc.executor.daemon.startup"


def modules_after(statement: str) -> set[str]:
    """sys.modules once ``statement`` ran in a fresh interpreter."""
    printed = subprocess.run(
        [sys.executable, "-c", f"{statement}; import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return set(printed.stdout.split())


def test_the_run_path_imports_no_heavy_module() -> None:
    assert sorted(HEAVY & modules_after(RUN_PATH)) == []


def test_the_start_up_before_the_first_create_does_not_import_asyncio() -> None:
    assert sorted({"asyncio", *HEAVY} & modules_after(START_UP)) == []


def test_the_daemon_runs_without_ssl() -> None:
    # `extsvc run` keeps ssl out (executor.cli.run): nothing the daemon imports, lazily
    # included (psutil for status requests and network checks), may need it.
    imported = modules_after(
        "import sys; sys.modules['ssl'] = None; import asyncio, psutil,"
        " extsvc.executor.daemon.main, extsvc.executor.daemon.control,"
        " extsvc.executor.daemon.status, extsvc.executor.host.probes"
    )  # raises if any of them fails to import
    assert {"asyncio", "psutil", "extsvc.executor.daemon.control"} <= imported
