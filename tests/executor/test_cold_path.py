"""The `extsvc run` path stays light (issue 12 item 3): what it must not import."""

from __future__ import annotations

import os
import subprocess
import sys

RUN_PATH = "import extsvc.cli, extsvc.executor.cli, extsvc.executor.daemon"
# A plan is JSON (no YAML loader); it is validated by schemacheck (no jsonschema);
# psutil is for status requests and network checks; ctypes.util spawns ldconfig.
HEAVY = {"yaml", "jsonschema", "psutil", "lark", "ctypes.util"}


def test_the_run_path_imports_no_heavy_module() -> None:
    imported = subprocess.run(
        [sys.executable, "-c", f"{RUN_PATH}; import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    ).stdout.split()
    assert sorted(HEAVY & set(imported)) == []
