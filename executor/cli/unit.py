"""`extsvc systemd-unit`: its own module, so that the commands run in loops (`extsvc
service`) do not import what it needs (run's parser, the plan loader, importlib.metadata:
about 55 ms)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from extsvc.executor.cli.shared import Duration, reported_errors
from extsvc.executor.cli.systemdunit import (
    ALWAYS_WRITTEN,
    Kind,
    local_systemd_version,
    run_options,
    systemd_unit,
)


class CheckedText(click.ParamType):  # type: ignore[type-arg]
    """Text that `extsvc run`'s own parser accepts (its type function), kept as given."""

    name = "text"

    def __init__(self, check: Callable[[str], Any]) -> None:
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            self.check(str(value))
        except (argparse.ArgumentTypeError, ValueError) as error:
            self.fail(str(error), param, ctx)
        return str(value)


def _run_option_parameters(command: Callable[..., Any]) -> Callable[..., Any]:
    """One click option per `extsvc run` option (bootunit.run_options reads run's parser):
    the same flags, help and checks, nothing given unless said (run's defaults apply)."""
    for option in reversed(run_options()):
        kinds: dict[Kind, Any] = {
            Kind.PATH: click.Path(readable=False, path_type=Path),
            Kind.DURATION: Duration(),
            Kind.CHOICE: click.Choice(option.choices),
            Kind.TEXT: CheckedText(option.check) if option.check else str,
        }
        always = option.dest in ALWAYS_WRITTEN
        command = click.option(
            *option.flags,
            option.dest,
            is_flag=option.kind is Kind.FLAG,
            type=None if option.kind is Kind.FLAG else kinds[option.kind],
            default=option.default if always or option.kind is Kind.FLAG else None,
            metavar=option.metavar,
            help=f"`extsvc run {option.flag}`: {option.help}",
        )(command)
    return command


@click.command("systemd-unit")
# readable=False: a denied path is said as every command says it (extsvc.cli).
@click.argument(
    "out", type=click.Path(readable=False, path_type=Path), default="/var/lib/extsvc/out"
)
@click.option(
    "--watchdog",
    type=Duration(),
    default="60s",
    show_default=True,
    help="WatchdogSec: systemd restarts an executor whose loop stops for this long (0s: none).",
)
@click.option(
    "--systemd-version",
    type=click.IntRange(min=1),
    default=None,
    help="Version of the systemd that runs the unit: 253 and later reload with "
    "Type=notify-reload [default: this machine's `systemctl --version`, else 252].",
)
@_run_option_parameters
def systemd_unit_command(
    out: Path, watchdog: float, systemd_version: int | None, **run: Any
) -> None:
    """Print a systemd unit that runs OUT at boot with this installation of extsvc.

    Every option of `extsvc run` is accepted and written into ExecStart. OUT must hold
    a compiled plan (its stop timeouts size TimeoutStopSec).
    """
    arguments = [a for o in run_options() for a in o.arguments(run[o.dest])]
    version = systemd_version if systemd_version is not None else local_systemd_version()
    with reported_errors():
        click.echo(systemd_unit(out, arguments, watchdog, version), nl=False)
