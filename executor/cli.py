"""`extsvc run`, `extsvc service`, `extsvc logs`: the only executor module that knows click.

Each command turns ExecutorError into one line on stderr and its exit code
(DESIGN §7); nothing below here prints or exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from extsvc.compiler.format.quantities import parse_duration
from extsvc.executor.errors import ExecutorError

STATE_DIR_HELP = "Executor state directory (holds the control socket)."
DEFAULT_STATE_DIR = "/run/extsvc"


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
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


def _print_event(quiet: bool) -> Callable[[str, Any], None] | None:
    if quiet:
        return None

    def on_event(service_id: str, event: Any) -> None:
        click.echo(f"{service_id} [{event.state.value}]: {event.message}", err=True)

    return on_event


@click.command("run")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help=STATE_DIR_HELP,
)
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path),
    default="/var/log/extsvc",
    show_default=True,
    help="One ext-<name>.log per service, size-rotated.",
)
@click.option("--runtime", default="runc", show_default=True, help="OCI runtime binary (runc).")
@click.option(
    "--host-services",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML: readiness rule (path/systemd/command/ready) per external service id.",
)
@click.option(
    "--config-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of ExtensionServiceConfig YAML documents, watched for changes.",
)
@click.option(
    "--console",
    type=click.Choice(["stdout", "kmsg", "none"]),
    default="stdout",
    show_default=True,
    help="Where logToConsole services also write their lines.",
)
@click.option(
    "--restart-interval",
    type=Duration(),
    default="5s",
    show_default=True,
    help="Wait between two runs of a restarting service (Talos: 5s).",
)
@click.option(
    "--restart-backoff-max",
    type=Duration(),
    default=None,
    help="Double the interval after each consecutive failure, up to this.",
)
@click.option(
    "--stop-timeout",
    type=Duration(),
    default="10s",
    show_default=True,
    help="Grace period between SIGTERM and SIGKILL (Talos: 10s).",
)
@click.option(
    "--check-interval",
    type=Duration(),
    default="1s",
    show_default=True,
    help="How often host conditions (paths, network, time) are re-checked.",
)
@click.option(
    "--no-overlay",
    is_flag=True,
    help="Run on the rootfs itself, without the ephemeral overlay (development only).",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print service events on stderr.")
def run_command(
    out: Path,
    state_dir: Path,
    log_dir: Path,
    runtime: str,
    host_services: Path | None,
    config_dir: Path | None,
    console: str,
    restart_interval: float,
    restart_backoff_max: float | None,
    stop_timeout: float,
    check_interval: float,
    no_overlay: bool,
    quiet: bool,
) -> None:
    """Run the compiled plan in OUT until SIGTERM/SIGINT (foreground daemon, as root)."""
    from extsvc.executor.daemon import DaemonOptions, Reporter, run_daemon
    from extsvc.executor.logs import ConsoleKind

    options = DaemonOptions(
        plan=out,
        state_dir=state_dir,
        log_dir=log_dir,
        runtime=runtime,
        host_services=host_services,
        config_dir=config_dir,
        console=ConsoleKind(console),
        restart_interval=restart_interval,
        restart_backoff_max=restart_backoff_max,
        stop_timeout=stop_timeout,
        check_interval=check_interval,
        overlay=not no_overlay,
    )
    reporter = Reporter(
        on_event=_print_event(quiet),
        on_notice=lambda message: click.echo(f"extsvc: {message}", err=True),
    )
    with reported_errors():
        try:
            asyncio.run(run_daemon(options, reporter))
        except KeyboardInterrupt:  # before the signal handlers are in place
            sys.exit(130)


def _client(state_dir: Path) -> Any:
    from extsvc.executor.control import ControlClient

    return ControlClient(state_dir)


@click.command("service")
@click.argument("service_id", required=False)
@click.argument("action", required=False, type=click.Choice(["start", "stop", "restart"]))
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help=STATE_DIR_HELP,
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def service_command(
    service_id: str | None, action: str | None, state_dir: Path, output: str
) -> None:
    """List services, show one (ID, state, PID, events), or start/stop/restart it."""
    from extsvc.executor import render

    with reported_errors():
        client = _client(state_dir)
        if service_id is None:
            response = client.request({"op": "services"})
            if output == "json":
                click.echo(json.dumps(response["services"], indent=2))
            else:
                click.echo(render.services_table(response["services"], response["now"]))
        elif action is None:
            response = client.request({"op": "service", "id": service_id})
            if output == "json":
                click.echo(json.dumps(response["service"], indent=2))
            else:
                click.echo(render.service_detail(response["service"], response["now"]))
        else:
            response = client.request({"op": action, "id": service_id})
            if output == "json":
                click.echo(json.dumps(response))
            else:
                click.echo(response["message"])


@click.command("logs")
@click.argument("service_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (across rotation).")
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    default=None,
    help="Only the last N lines (default: all that are kept).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help=STATE_DIR_HELP,
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def logs_command(
    service_id: str, follow: bool, tail: int | None, state_dir: Path, output: str
) -> None:
    """Print the logs of SERVICE_ID (e.g. ext-hello-world)."""
    client = _client(state_dir)
    client.timeout = None if follow else 60.0
    with reported_errors():
        try:
            for message in client.stream(
                {"op": "logs", "id": service_id, "tail": tail, "follow": follow}
            ):
                if "line" not in message:
                    continue
                if output == "json":
                    click.echo(json.dumps({"service": service_id, "line": message["line"]}))
                else:
                    click.echo(message["line"])
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:  # `extsvc logs x | head`
            sys.stderr.close()
