"""The `extsvc` command line: a thin layer over the compiler and executor libraries.

Startup time matters (`extsvc validate` runs in pre-commit hooks), so each
command imports its library only when it runs, and executor commands are
loaded from ``executor.cli`` only when one of them is asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# Exit codes (DESIGN §7).
EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3

# Commands that live elsewhere: name -> "module:attribute".
LAZY_COMMANDS = {
    "compile": "compiler.cli_compile:compile_command",
    "validate": "compiler.cli_compile:validate_command",
    "schema": "compiler.cli_compile:schema_command",
    "run": "executor.cli:run_command",
    "service": "executor.cli:service_command",
    "logs": "executor.cli:logs_command",
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="extsvc", prog_name="extsvc")
def cli() -> None:
    """Compile Talos extension services to OCI bundles, and run them with runc."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="extsvc")


if __name__ == "__main__":
    sys.exit(main())
