"""Where the executor keeps its state and its logs unless told otherwise: one definition
for `extsvc run` (executor.options) and for the commands that find a running daemon
(`service`, `reload`, `logs`). Nothing but pathlib: those commands are timed against
``import click`` (bench/control_bench.py), and executor.options costs dataclasses."""

from __future__ import annotations

from pathlib import Path

# The control socket, the lock, the bundles' state (executor.runtime.workspace).
DEFAULT_STATE_DIR = Path("/run/extsvc")
# One file per service (executor.logs.servicelog).
DEFAULT_LOG_DIR = Path("/var/log/extsvc")
