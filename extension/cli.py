"""`extsvc extension install | list | remove`: the only extension module that knows click.

Each command turns ExtensionError into a message on stderr (a ManifestError into located
diagnostics) and exit code 1; nothing below here prints or exits.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from extsvc.compiler.format.diagnostics import escape
from extsvc.compiler.format.exitcodes import EXIT_INVALID_INPUT
from extsvc.extension.errors import ExtensionError, ManifestError

root_option = click.option(
    "--root",
    type=click.Path(readable=False, file_okay=False, path_type=Path),
    default="/",
    show_default=True,
    help="The root filesystem the extensions are laid onto.",
)


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    number, unit = text.strip().lower().rstrip("ib"), 1
    if number and number[-1] in units:
        number, unit = number[:-1], units[number[-1]]
    try:
        return int(float(number) * unit)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size such as 8G") from None


def _reported(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except ManifestError as error:
        click.echo("\n".join(d.render() for d in error.diagnostics), err=True)
        click.echo("extsvc: nothing installed", err=True)
    except ExtensionError as error:
        click.echo(escape(f"extsvc: {error}"), err=True)
    sys.exit(EXIT_INVALID_INPUT)


@click.group("extension")
def extension_command() -> None:
    """Install, list and remove Talos system extensions (OCI images) on a root filesystem."""


@extension_command.command("install")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@root_option
@click.option(
    "--talos-version",
    metavar="VERSION",
    help="Refuse an extension whose compatibility.talos.version this Talos version misses.",
)
@click.option(
    "--max-size",
    default="16G",
    show_default=True,
    metavar="SIZE",
    help="Refuse an image that unpacks to more than this.",
)
def install_command(
    sources: tuple[str, ...], root: Path, talos_version: str | None, max_size: str
) -> None:
    """Install extension images: an OCI layout DIR[:TAG], an oci-archive or docker-archive
    FILE[:TAG], or a directory holding manifest.yaml and rootfs/."""
    from extsvc.extension.install import InstallOptions, install
    from extsvc.extension.streams import Limits

    options = InstallOptions(limits=Limits(max_bytes=_size(max_size)), talos_version=talos_version)
    for done in _reported(lambda: install(sources, root, options)):
        change = f"upgraded from {done.previous} to" if done.previous else "installed"
        services = f"; services: {', '.join(done.services)}" if done.services else ""
        click.echo(escape(f"{done.name}: {change} {done.version} ({done.files} files{services})"))


@extension_command.command("list")
@root_option
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def list_command(root: Path, output: str) -> None:
    """The extensions installed on the root (as `talosctl get extensions`)."""
    from extsvc.extension.install import installed, pending

    records = _reported(lambda: installed(root))
    if output == "json":
        shown = [
            {k: v for k, v in r.items() if k not in ("files", "directories")}
            | {"files": len(r["files"])}
            for r in records
        ]
        click.echo(json.dumps(shown, indent=2, sort_keys=True))
    else:
        click.echo(_table(records) if records else "no extensions installed")
    if pending(root):
        click.echo(
            "warning: an interrupted install or remove is pending; the next one finishes "
            "or undoes it",
            err=True,
        )


def _table(records: list[dict[str, Any]]) -> str:
    rows = [["NAME", "VERSION", "AUTHOR", "SERVICES", "TALOS", "DIGEST"]]
    for record in records:
        digest = record.get("digest") or "-"
        cells = [record["name"], record["version"], record["author"]]
        cells += [",".join(record["services"]) or "-", record.get("compatibility") or "any"]
        cells.append(digest[:19])
        rows.append([escape(str(cell)) for cell in cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@extension_command.command("remove")
@click.argument("name")
@root_option
def remove_command(name: str, root: Path) -> None:
    """Remove an installed extension: exactly the files it installed."""
    from extsvc.extension.install import remove

    record = _reported(lambda: remove(name, root))
    click.echo(escape(f"{name}: removed {record['version']} ({len(record['files'])} files)"))
