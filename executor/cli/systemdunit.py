"""The systemd unit `extsvc systemd-unit` prints for this installation (docs/boot.md).

- ``ExecStart`` is this installation's entry point (``installed_command``) with
  every `extsvc run` option it was given: the options are read off run's own
  parser (``run_options``), so one table serves both and a new option of `run`
  can be passed here without a line changed.
- ``Type=notify``: the executor sends READY=1 once the plan is loaded, recovery is
  done and every service began its first attempt (executor.daemon.notify), so units
  ordered ``After=extsvc.service`` start after that, not after a fork.
- Reload: on systemd >= 253 ``Type=notify-reload`` (systemd sends SIGHUP and waits
  for the executor's RELOADING=1 ... READY=1); before, ``ExecReload=extsvc reload``,
  which returns once the reload is applied (a bare ``kill -HUP`` returns at once).
- ``Delegate=yes``: the unit's cgroup subtree is the executor's to manage; it puts
  each container there (``<unit cgroup>/system/extensions/<name>``, executor.runtime.placement),
  so `systemctl status extsvc` shows every service's processes and systemd's rule of
  one writer per cgroup holds.
- ``KillMode=mixed``: SIGTERM to the executor alone, which stops the containers
  dependents first with their grace; whatever is left in the unit's cgroup (a
  container, if the executor died) gets SIGKILL once the executor is gone or when
  ``TimeoutStopSec`` runs out.
- ``TimeoutStopSec`` (and ``TimeoutStartSec``, which bounds a reload): the
  executor's own shutdown bound for this plan (DaemonOptions.shutdown_bound) plus
  EXIT_MARGIN, so systemd never kills an executor that is still within its bound.
- ``WatchdogSec``: the executor pings every half of it while its loop runs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from extsvc.compiler.format.durations import exact_duration
from extsvc.compiler.format.plan import PlanError, load_plan
from extsvc.executor.cli import run as run_cli
from extsvc.executor.errors import InvalidInputError, from_plan_error
from extsvc.executor.host.readiness import load_host_services
from extsvc.executor.options import DaemonOptions

# What follows the executor's shutdown bound before it exits: killing what a hung
# runtime left, closing the control socket and logs, removing cgroup parents.
EXIT_MARGIN = 15.0
WATCHDOG = 60.0
NOTIFY_RELOAD_SINCE = 253  # systemd's first version with Type=notify-reload
OLDEST_SYSTEMD = 252  # assumed when the version cannot be read (no notify-reload)
# Past this systemd cannot hold a time span in microseconds: the stop is unbounded.
LONGEST_TIMEOUT = 100 * 365 * 86400
# Options whose default comes from the environment of whoever writes the unit: always
# written, so the unit does not depend on the environment systemd gives it.
ALWAYS_WRITTEN = frozenset({"state_dir", "log_dir"})


class Kind(Enum):
    PATH = "path"
    DURATION = "duration"
    CHOICE = "choice"
    FLAG = "flag"
    TEXT = "text"


@dataclass(frozen=True)
class RunOption:
    """One option of `extsvc run`, as its parser defines it."""

    flags: tuple[str, ...]
    dest: str
    kind: Kind
    help: str
    default: Any
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    # TEXT: run's own check of the text (a size, a count), written back as given.
    check: Callable[[str], Any] | None = None

    @property
    def flag(self) -> str:
        """The long form, as written into ExecStart."""
        return max(self.flags, key=len)

    def arguments(self, value: Any) -> list[str]:
        """``value`` (parsed) written back as `run` reads it; [] when not to be written."""
        if value is None or value is False:
            return []
        if self.kind is Kind.FLAG:
            return [self.flag]
        if self.kind is Kind.PATH:
            return [self.flag, str(Path(value).absolute())]
        if self.kind is Kind.DURATION:
            return [self.flag, exact_duration(value)]
        return [self.flag, str(value)]


def run_options() -> list[RunOption]:
    """Every option of `extsvc run` (its argparse parser is the one table)."""
    options = []
    for action in run_cli.parser()._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        if action.nargs == 0:
            kind = Kind.FLAG
        elif action.type is run_cli.duration:
            kind = Kind.DURATION
        elif action.type is Path:
            kind = Kind.PATH
        elif action.choices is not None:
            kind = Kind.CHOICE
        else:
            kind = Kind.TEXT
        options.append(
            RunOption(
                flags=tuple(action.option_strings),
                dest=action.dest,
                kind=kind,
                help=action.help or "",
                default=action.default,
                choices=tuple(action.choices or ()),
                metavar=action.metavar if isinstance(action.metavar, str) else None,
                check=action.type if kind is Kind.TEXT and callable(action.type) else None,
            )
        )
    return options


def installed_command() -> list[str]:
    """How this installation is started, as an absolute command.

    The first ``extsvc`` script that runs this very interpreter (its ``#!`` names a
    Python in this interpreter's directory, so another venv's script is never taken):
    1. the one pip wrote for this distribution, as its RECORD lists it: a venv's
       ``bin/extsvc``, pipx's ``~/.local/pipx/venvs/extsvc/bin/extsvc`` (not the link
       on PATH, which pipx may move), ``/usr/local/bin/extsvc`` for a system pip;
    2. ``extsvc`` on PATH: a distro package, whose metadata lists no files
       (``/usr/bin/extsvc``);
    3. else this interpreter with ``-m extsvc`` (a checkout run as ``python -m``).
    """
    on_path = shutil.which("extsvc")
    candidates = [*_recorded_scripts(), *([Path(on_path)] if on_path else [])]
    for script in candidates:
        if _runs_this_python(script):
            return [str(script.absolute())]
    return [sys.executable, "-m", "extsvc"]


def _recorded_scripts() -> list[Path]:
    scripts = []
    for distribution in importlib.metadata.distributions(name="extsvc"):
        for file in distribution.files or ():
            if file.name == "extsvc" and file.parent.name == "bin":
                scripts.append(Path(str(distribution.locate_file(file))).resolve())
    return scripts


def _runs_this_python(script: Path) -> bool:
    try:
        with script.open("rb") as text:
            first = text.readline(4096).decode(errors="replace")
    except OSError:
        return False
    words = first.removeprefix("#!").split()
    if not first.startswith("#!") or not words:
        return False
    # The directories, not the files: a venv's python is a link to the base interpreter.
    return Path(words[0]).parent.resolve() == Path(sys.executable).parent.resolve()


def local_systemd_version() -> int:
    """This machine's systemd version (`systemctl --version`), else OLDEST_SYSTEMD."""
    try:
        shown = subprocess.run(
            ["systemctl", "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return OLDEST_SYSTEMD
    found = re.match(r"systemd (\d+)", shown)
    return int(found.group(1)) if found else OLDEST_SYSTEMD


def _seconds(value: float) -> str:
    """A systemd time span: whole seconds, rounded up; ``infinity`` past what it holds."""
    return "infinity" if value >= LONGEST_TIMEOUT else str(math.ceil(value))


def command_line(argv: list[str]) -> str:
    """``argv`` as systemd reads an Exec line: quoted as a shell would, and ``%``/``$``
    doubled (systemd expands specifiers and variables even inside quotes)."""
    return shlex.join(argv).replace("%", "%%").replace("$", "$$")


def systemd_unit(
    out: Path,
    run_arguments: list[str],
    watchdog: float = WATCHDOG,
    systemd_version: int = OLDEST_SYSTEMD,
) -> str:
    """The unit for OUT; ``run_arguments`` are `extsvc run` options (as run_options
    writes them). OUT must hold a plan: a unit that could never start is refused."""
    try:
        arguments = run_cli.parser().parse_args([str(out), *run_arguments])
    except SystemExit:  # argparse printed why; the caller validated, so a bug if here
        raise InvalidInputError(f"`extsvc run` refuses: {shlex.join(run_arguments)}") from None
    options: DaemonOptions = run_cli.options_from(arguments)
    try:
        plan = load_plan(out)
    except PlanError as error:
        raise from_plan_error(error) from None
    # What `run` would refuse at boot is refused now (file:line:col, as `run` says it).
    load_host_services(options.host_services)
    stop = _seconds(options.shutdown_bound(plan) + EXIT_MARGIN)
    extsvc = installed_command()
    run = [*extsvc, "run", str(out.absolute()), *run_arguments]
    if systemd_version >= NOTIFY_RELOAD_SINCE:
        reload = "Type=notify-reload\nReloadSignal=SIGHUP"
    else:
        waits = [*extsvc, "reload", "--state-dir", str(options.state_dir)]
        reload = f"Type=notify\nExecReload={command_line(waits)}"
    watchdog_line = f"WatchdogSec={exact_duration(watchdog)}\n" if watchdog > 0 else ""
    return f"""\
# Written by `extsvc systemd-unit`; see docs/boot.md.
[Unit]
Description=extsvc: Talos extension services from {out.absolute()}
# Services wait for the network themselves (their `depends`), so no network-online.
After=local-fs.target

[Service]
{reload}
NotifyAccess=main
ExecStart={command_line(run)}
Delegate=yes
KillMode=mixed
# The executor's shutdown bound for this plan plus {EXIT_MARGIN:g}s; a reload stops what changed.
TimeoutStopSec={stop}
TimeoutStartSec={stop}
{watchdog_line}Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
"""
