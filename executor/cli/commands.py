"""`extsvc run`, `extsvc service` and `extsvc reload`: the daemon and its control socket
from the command line (the options they share: executor.cli.shared)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from extsvc.executor.cli.shared import (
    Duration,
    control_client,
    needs_root,
    output_option,
    reported_errors,
    state_dir_option,
)
from extsvc.executor.daemon.client import DEFAULT_SETTLE, DEFAULT_START_TIMEOUT


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def run_command(arguments: tuple[str, ...]) -> None:
    """Run the compiled plan in OUT until SIGTERM/SIGINT (foreground daemon, as root)."""
    # `extsvc run` is parsed by argparse, without click on boot's path (extsvc.entry
    # goes there directly); this command only lists it and serves click's callers.
    from extsvc.executor.cli.run import main

    sys.exit(main(arguments))


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _print_plan_note(response: dict[str, Any]) -> None:
    from extsvc.executor.cli.servicetext import plan_note

    note = plan_note(response.get("plan"))
    if note is not None:
        click.echo(f"extsvc: {note}", err=True)


@click.command("service")
@click.argument("service_id", required=False)
@click.argument("action", required=False, type=click.Choice(["start", "stop", "restart", "status"]))
@state_dir_option
@output_option
@click.option("--no-wait", is_flag=True, help="start/restart: return once asked, without waiting.")
@click.option(
    "--timeout",
    type=Duration(),
    default=DEFAULT_START_TIMEOUT,
    help="start/restart: how long to wait for Running (or a one-shot's success).  "
    f"[default: {DEFAULT_START_TIMEOUT:g}s]",
)
@click.option(
    "--settle",
    type=Duration(),
    default=DEFAULT_SETTLE,
    help="start/restart: how long it must stay Running to count as started "
    f"(with a health check: until healthy instead).  [default: {DEFAULT_SETTLE:g}s]",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Also print (on stderr) where this command's time went and how late the "
    "executor's event loop runs.",
)
def service_command(
    service_id: str | None,
    action: str | None,
    state_dir: Path,
    output: str,
    no_wait: bool,
    timeout: float,
    settle: float,
    debug: bool,
) -> None:
    """List services, show one (ID or bare name: state, PID, events), or start/stop/restart it.

    start and restart wait until the service is Running (or Finished, for a
    one-shot) and exit 1 with the failure event if it fails or times out.
    """
    with reported_errors():
        needs_root("service")
        client = control_client(state_dir, timeout + settle + 30)
        marks: dict[str, float] | None = {} if debug else None
        if service_id is None:
            response = client.request({"op": "services"}, marks)
            if output == "json":
                _dump(
                    {k: response[k] for k in ("now", "plan", "services", "loop") if k in response}
                )
            else:
                from extsvc.executor.cli import servicetext

                click.echo(servicetext.services_table(response["services"], response["now"]))
            _print_plan_note(response)
        elif action in (None, "status"):
            response = client.request({"op": "service", "id": service_id}, marks)
            if output == "json":
                _dump(response["service"])
            else:
                from extsvc.executor.cli import servicetext

                click.echo(servicetext.service_detail(response["service"], response["now"]))
            _print_plan_note(response)
        else:
            request = {"op": action, "id": service_id, "wait": not no_wait}
            request.update(timeout=timeout, settle=settle)
            response = client.request(request, marks)
            if output == "json":
                click.echo(json.dumps(response))
            else:
                click.echo(response["message"])
        if marks is not None:
            from extsvc.executor.cli import servicetext

            click.echo(servicetext.debug_report(marks, response), err=True)


@click.command("reload")
@state_dir_option
@output_option
def reload_command(state_dir: Path, output: str) -> None:
    """Re-read the running plan (as SIGHUP): restart what changed, start what is new,
    stop what was removed; a plan that fails validation is refused, nothing is touched."""
    with reported_errors():
        needs_root("reload")
        response = control_client(state_dir, None).request({"op": "reload"})
        if output == "json":
            click.echo(json.dumps(response))
        else:
            click.echo(response["message"])
