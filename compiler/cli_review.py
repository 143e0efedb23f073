"""`extsvc diff | explain`: the review tools' command line (arguments, printing, exit codes).

``diff`` follows diff(1): exit 0 when nothing changed, 1 when something did
(with ``--fail-on privilege``: only when something became more privileged), 2
for a usage error or a side that cannot be read or compiled.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from extsvc.compiler.defaults import DEFAULT_ROOTFS_BASE
from extsvc.compiler.format.diagnostics import Diagnostic
from extsvc.compiler.format.exitcodes import EXIT_DIFF_TROUBLE
from extsvc.compiler.review.diff import CompiledOutput


def _colour_wanted() -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _fail(message: str, diagnostics: tuple[Diagnostic, ...] = ()) -> NoReturn:
    for diagnostic in diagnostics:
        click.echo(diagnostic.render(), err=True)
    click.echo(f"extsvc: {message}", err=True)
    sys.exit(EXIT_DIFF_TROUBLE)


def _print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))


@click.command("diff")
@click.argument("paths", nargs=-1, metavar="OLD NEW | --git REV DIR")
@click.option(
    "--git",
    "revision",
    metavar="REV",
    help="Compare DIR as it was at git revision REV with DIR as it is now (no checkout).",
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: for bots (schema: `extsvc schema --diff`).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["change", "privilege"]),
    default="change",
    show_default=True,
    help="privilege: exit 1 only when something became more privileged (a CI gate).",
)
@click.option("--show-values", is_flag=True, help="Show environment values (masked by default).")
@click.option(
    "--arch",
    type=click.Choice(["amd64", "arm64"]),
    help="Target architecture for source sides (default: a compiled side's, else this host's).",
)
@click.option(
    "--rootfs-base",
    help=f"Rootfs base for source sides (default: a compiled side's, else {DEFAULT_ROOTFS_BASE}).",
)
def diff_command(
    paths: tuple[str, ...],
    revision: str | None,
    output: str,
    fail_on: str,
    show_values: bool,
    arch: str | None,
    rootfs_base: str | None,
) -> None:
    """Semantic, privilege-aware diff of two compiled outputs or source sets.

    OLD and NEW are each a compiled output (a directory with plan.json) or a
    directory of service files, compiled in memory. Changes that give a service
    more power or exposure (privilege+) come first.
    """
    from extsvc.compiler.review import diffreport
    from extsvc.compiler.review.diff import diff_outputs, exit_status
    from extsvc.compiler.review.outputs import ReviewInputError, git_snapshot

    if revision is not None:
        if len(paths) != 1:
            raise click.UsageError("with --git REV, give exactly one directory")
    elif len(paths) != 2:
        raise click.UsageError("give two directories to compare: OLD NEW (or --git REV DIR)")
    if rootfs_base is not None and not rootfs_base.startswith("/"):
        raise click.BadParameter("must be an absolute path", param_hint="--rootfs-base")
    try:
        if revision is not None:
            directory = Path(paths[0])
            with git_snapshot(revision, directory) as snapshot:
                old_label = f"{revision}:{paths[0].rstrip('/') or '.'}"
                old, new = _load_pair(
                    (snapshot, old_label), (directory, paths[0]), arch, rootfs_base
                )
        else:
            old_path, new_path = paths[0], paths[-1]
            old, new = _load_pair(
                (Path(old_path), old_path), (Path(new_path), new_path), arch, rootfs_base
            )
    except ReviewInputError as error:
        _fail(str(error), error.diagnostics)
    changes = diff_outputs(old, new, show_values=show_values)
    if output == "json":
        _print_json(diffreport.to_json(changes, old=old.label, new=new.label))
    else:
        click.echo(diffreport.render_text(changes, colour=_colour_wanted()), nl=False)
    sys.exit(exit_status(changes, fail_on))


def _load_pair(
    old: tuple[Path, str], new: tuple[Path, str], arch: str | None, rootfs_base: str | None
) -> tuple[CompiledOutput, CompiledOutput]:
    """Both sides as CompiledOutput; source sides compiled like the compiled side, if any."""
    from extsvc.compiler.format.plan import host_arch
    from extsvc.compiler.review.outputs import (
        ReviewInputError,
        compile_directory,
        is_output_dir,
        load_output_dir,
    )

    loaded: dict[str, CompiledOutput] = {}
    for side, (path, label) in (("old", old), ("new", new)):
        if not path.exists():
            raise ReviewInputError(f"{label}: no such file or directory")
        if is_output_dir(path):
            loaded[side] = load_output_dir(path, label)
    compiled = next(iter(loaded.values()), None)
    target_arch = arch or (compiled.plan["arch"] if compiled else None) or host_arch() or "amd64"
    base = rootfs_base or (compiled.plan["rootfsBase"] if compiled else DEFAULT_ROOTFS_BASE)
    for side, (path, label) in (("old", old), ("new", new)):
        if side not in loaded:
            loaded[side] = compile_directory(path, rootfs_base=base, arch=target_arch, label=label)
    return loaded["old"], loaded["new"]


@click.command("explain")
@click.argument("out", metavar="OUT")
@click.argument("service", metavar="SERVICE")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--show-values", is_flag=True, help="Show environment values (masked by default).")
def explain_command(out: str, service: str, output: str, show_values: bool) -> None:
    """Every field of SERVICE's config.json in OUT, and where it came from.

    OUT is a compiled output (or a source directory, compiled in memory);
    SERVICE is an id (ext-NAME) or a name.
    """
    from extsvc.compiler.format.plan import CONFIG_FILE, ORIGINS_FILE, host_arch, sha256_digest
    from extsvc.compiler.format.serviceids import is_extension_id, service_id
    from extsvc.compiler.review import explain
    from extsvc.compiler.review.outputs import (
        ReviewInputError,
        compile_directory,
        is_output_dir,
        load_output_dir,
    )

    path = Path(out)
    wanted = service if is_extension_id(service) else service_id(service)
    try:
        if not path.is_dir():
            raise ReviewInputError(f"{out}: no such directory")
        if is_output_dir(path):
            loaded = load_output_dir(path, out)
        else:
            arch = host_arch() or "amd64"
            loaded = compile_directory(path, rootfs_base=DEFAULT_ROOTFS_BASE, arch=arch)
    except ReviewInputError as error:
        _fail(str(error), error.diagnostics)
    entry = loaded.plan_entry(wanted)
    if not entry:
        known = ", ".join(loaded.service_ids()) or "none"
        _fail(f"{out}: no service {wanted} (services: {known})")
    config_bytes = loaded.files[f"{entry['bundle']}/{CONFIG_FILE}"]
    digest = sha256_digest(config_bytes)
    origins = loaded.origins.get(wanted)
    if origins is None:
        _fail(
            f"{out}: {entry['bundle']}/{ORIGINS_FILE} is missing "
            "(compiled by an older extsvc?): compile again to explain it"
        )
    if origins.get("config") != digest:
        _fail(
            f"{out}: {entry['bundle']}/{ORIGINS_FILE} describes another config.json "
            f"({origins.get('config')}, not {digest}): compile again"
        )
    rows = explain.explain_config(loaded.configs[wanted], origins, show_values=show_values)
    if output == "json":
        _print_json(explain.to_json(wanted, entry["source"], digest, rows))
    else:
        click.echo(explain.render_text(wanted, entry["source"], rows), nl=False)
