"""`extsvc metrics`: the executor's state in Prometheus's text format or OpenMetrics."""

from __future__ import annotations

from pathlib import Path

import click

from extsvc.executor.cli.shared import control_client, needs_root, reported_errors, state_dir_option
from extsvc.executor.errors import DaemonUnreachableError


@click.command("metrics")
@state_dir_option
@click.option(
    "--openmetrics", is_flag=True, help="OpenMetrics 1.0 instead of the Prometheus text format."
)
def metrics_command(state_dir: Path, openmetrics: bool) -> None:
    """Print the running executor's metrics (service states, health, restarts, drops, ...).

    With no executor running, print what its state dir still says (``extsvc_up 0``,
    containers left behind) and exit 3.
    """
    with reported_errors():
        needs_root("metrics")
        try:
            response = control_client(state_dir).request(
                {"op": "metrics", "openmetrics": openmetrics}
            )
        except DaemonUnreachableError as error:
            from extsvc.executor.daemon.client import read_run_info
            from extsvc.executor.metrics.exposition import render
            from extsvc.executor.metrics.families import stopped_families

            text = render(stopped_families(state_dir, read_run_info(state_dir)), openmetrics)
            click.echo(text, nl=False)
            raise error
        click.echo(response["text"], nl=False)
