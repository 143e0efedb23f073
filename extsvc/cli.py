"""The `extsvc` command line: it only dispatches to the compiler's, the executor's and the
extension installer's commands.

Startup time matters (`extsvc validate` runs in pre-commit hooks, `extsvc
service` in loops), so each command's module is imported only when that
command is asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from extsvc import __version__

# Commands that live elsewhere: name -> "module:attribute".
LAZY_COMMANDS = {
    "compile": "extsvc.compiler.cli_compile:compile_command",
    "validate": "extsvc.compiler.cli_compile:validate_command",
    "schema": "extsvc.compiler.cli_compile:schema_command",
    "diff": "extsvc.compiler.cli_review:diff_command",
    "explain": "extsvc.compiler.cli_review:explain_command",
    "run": "extsvc.executor.cli.commands:run_command",
    "service": "extsvc.executor.cli.commands:service_command",
    # talosctl habit: `services` lists them too.
    "services": "extsvc.executor.cli.commands:service_command",
    "logs": "extsvc.executor.cli.logcommand:logs_command",
    "metrics": "extsvc.executor.cli.metrics:metrics_command",
    "plan": "extsvc.executor.cli.plan:plan_command",
    "reload": "extsvc.executor.cli.commands:reload_command",
    "systemd-unit": "extsvc.executor.cli.unit:systemd_unit_command",
    "extension": "extsvc.extension.cli:extension_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # Every command reads or writes files a user may not be allowed to: whichever
        # it is, the denial reads the same (one line, exit 3), never a traceback. The
        # commands let PermissionError through to here for that reason.
        try:
            return super().invoke(ctx)
        except PermissionError as error:
            from extsvc.compiler.format.exitcodes import EXIT_ENVIRONMENT, permission_denied

            command = f"extsvc {ctx.invoked_subcommand or ctx.info_name}"
            click.echo(f"extsvc: error: {permission_denied(command, error)}", err=True)
            ctx.exit(EXIT_ENVIRONMENT)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="extsvc")
def cli() -> None:
    """Compile Talos extension services to OCI bundles, and run them with runc."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="extsvc")


if __name__ == "__main__":
    sys.exit(main())
