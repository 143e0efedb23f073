"""What the executor's commands share: their common options, the `--timeout`-style
duration type, the one-line error report, and the control client.

The executor's command line is the only part of it that knows click (an import-linter
contract); each command turns ExecutorError into one line on stderr and its exit code
(DESIGN §7), and nothing below the command line prints or exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from extsvc.executor.daemon.client import ANSWER_TIMEOUT
from extsvc.executor.errors import EnvironmentMissingError, ExecutorError
from extsvc.executor.locations import DEFAULT_LOG_DIR, DEFAULT_STATE_DIR

STATE_DIR_HELP = "Executor state directory (holds the control socket)."

# readable=False: a denied path is said as every command says it (extsvc.cli).
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(readable=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    envvar="EXTSVC_STATE_DIR",
    help=STATE_DIR_HELP + " [env: EXTSVC_STATE_DIR]",
)


def log_dir_option(
    help_text: str, default: Path | None = DEFAULT_LOG_DIR
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--log-dir",
        type=click.Path(readable=False, path_type=Path),
        default=default,
        show_default=default is not None,
        envvar="EXTSVC_LOG_DIR",
        help=help_text + " [env: EXTSVC_LOG_DIR]",
    )


output_option = click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        # Imported when a duration is written, not for the defaults: the parser and its
        # regular expressions cost a status command a fifth of its start-up.
        from extsvc.compiler.format.quantities import parse_duration

        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@contextmanager
def reported_errors() -> Iterator[None]:
    """One line and the error's exit code instead of a traceback."""
    try:
        yield
    except ExecutorError as error:
        click.echo(f"extsvc: error: {error}", err=True)
        sys.exit(error.exit_code)


def control_client(state_dir: Path, timeout: float | None = ANSWER_TIMEOUT) -> Any:
    from extsvc.executor.daemon.client import ControlClient

    return ControlClient(state_dir, timeout)


def needs_root(command: str) -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissingError(
            f"extsvc {command} needs root: the executor's control socket and state are "
            "root's (run it with sudo)"
        )
