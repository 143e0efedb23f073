"""The systemd unit `extsvc systemd-unit` prints for this installation (docs/boot.md).

- ``Type=notify``: the executor sends READY=1 once the plan is loaded, recovery is
  done and every service began its first attempt (executor.notify), so units
  ordered ``After=extsvc.service`` start after that, not after a fork.
- ``ExecReload`` sends SIGHUP: the executor reloads the plan (RELOADING=1 … READY=1).
- ``KillMode=mixed``: SIGTERM to the executor alone, which stops the containers
  dependents first with their grace; whatever is left in the unit's cgroup gets
  SIGKILL only when ``TimeoutStopSec`` runs out. The containers live in their own
  cgroups (/system/extensions/<name>), stopped by the executor, not by systemd.
- ``TimeoutStopSec``: one grace per dependency level (a level stops only after the
  levels that depend on it), plus a margin for runc and unmounting.
- ``WatchdogSec``: the executor pings every half of it while its loop runs.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from extsvc.executor.durations import exact_duration

STOP_MARGIN_SECONDS = 30
WATCHDOG_SECONDS = 60
DEFAULT_LEVELS = 3  # when OUT/plan.json cannot be read yet (the unit is written before compiling)


def extsvc_command() -> list[str]:
    """How this installation is started: its `extsvc` script, else this Python with -m."""
    script = Path(sys.argv[0])
    if script.name == "extsvc" and script.exists():
        return [str(script.resolve())]
    return [sys.executable, "-m", "extsvc"]


def plan_levels(out: Path) -> int:
    try:
        plan = json.loads((out / "plan.json").read_text())
        return max(len(plan["levels"]), 1)
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_LEVELS


def stop_timeout_seconds(levels: int, stop_timeout: float) -> int:
    return int(levels * stop_timeout) + STOP_MARGIN_SECONDS


def systemd_unit(out: Path, state_dir: Path, log_dir: Path, stop_timeout: float) -> str:
    run = [
        *extsvc_command(), "run", str(out.absolute()),
        "--state-dir", str(state_dir.absolute()),
        "--log-dir", str(log_dir.absolute()),
        "--stop-timeout", exact_duration(stop_timeout),
    ]  # fmt: skip
    timeout = stop_timeout_seconds(plan_levels(out), stop_timeout)
    return f"""\
# Written by `extsvc systemd-unit`; see docs/boot.md.
[Unit]
Description=extsvc: Talos extension services from {out.absolute()}
# Services wait for the network themselves (their `depends`), so no network-online.
After=local-fs.target
ConditionPathExists={(out / "plan.json").absolute()}

[Service]
Type=notify
NotifyAccess=main
ExecStart={shlex.join(run)}
ExecReload=/bin/kill -HUP $MAINPID
KillMode=mixed
TimeoutStopSec={timeout}
WatchdogSec={WATCHDOG_SECONDS}
Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
"""
