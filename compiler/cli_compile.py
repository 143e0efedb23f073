"""`extsvc compile | validate | schema`: printing and exit codes around the pipeline."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from extsvc.compiler.defaults import DEFAULT_ROOTFS_BASE
from extsvc.compiler.format.diagnostics import Diagnostic
from extsvc.compiler.format.exitcodes import EXIT_INVALID_INPUT


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    if diagnostics:  # one write: a hostile file can have 50,000 diagnostics
        click.echo("\n".join(diagnostic.render() for diagnostic in diagnostics), err=True)


def _summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def _fails(diagnostics: Sequence[Diagnostic], strict: bool) -> bool:
    return any(d.is_error or strict for d in diagnostics)


def _require_sources(found: int, diagnostics: Sequence[Diagnostic]) -> None:
    # An empty set is almost always a wrong path; compiling it would replace a
    # previous OUT with an empty plan.
    if found == 0:
        _print_diagnostics(diagnostics)
        click.echo("extsvc: no service files found; nothing done", err=True)
        sys.exit(EXIT_INVALID_INPUT)


def _check_rootfs_base(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.startswith("/"):
        raise click.BadParameter("must be an absolute path")
    return value


@click.command("compile")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Output directory.",
)
@click.option(
    "--rootfs-base",
    default=DEFAULT_ROOTFS_BASE,
    show_default=True,
    callback=_check_rootfs_base,
    help="Directory holding each service's rootfs (<base>/<name>).",
)
@click.option(
    "--arch", type=click.Choice(["amd64", "arm64"]), help="Target architecture (seccomp profile)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check and build everything, print each file (a ---PATH--- line, then its "
    "content) instead of writing it.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--annotate",
    is_flag=True,
    help="Name each spec's source file and its sha256 in the spec's annotations.",
)
def compile_command(
    sources: tuple[str, ...],
    output: Path,
    rootfs_base: str,
    arch: str | None,
    dry_run: bool,
    strict: bool,
    annotate: bool,
) -> None:
    """Compile service YAML files (or directories of *.yaml) into OCI bundles and a plan."""
    from extsvc.compiler.format.plan import host_arch
    from extsvc.compiler.pipeline import CompileOptions, compile
    from extsvc.compiler.sources import collect_sources
    from extsvc.compiler.write import OutputError, write_tree

    target_arch = arch or host_arch()
    if target_arch is None:
        raise click.UsageError(
            "cannot tell the target architecture from this host: pass --arch amd64|arm64"
        )
    files, read_problems = collect_sources(sources)
    _require_sources(len(files), read_problems)
    result = compile(
        files, CompileOptions(rootfs_base=rootfs_base, arch=target_arch, annotate=annotate)
    )
    diagnostics = [*read_problems, *result.diagnostics]
    _print_diagnostics(diagnostics)
    if _fails(diagnostics, strict) or not result.ok:
        click.echo(f"extsvc: nothing written: {_summary(diagnostics)}", err=True)
        sys.exit(EXIT_INVALID_INPUT)
    services = sum(1 for name in result.files if name.endswith("/config.json"))
    if dry_run:
        # As `quadlet -dryrun`: every file that would be written, under a line naming it.
        for name in sorted(result.files):
            click.echo(f"---{output / name}---")
            click.echo(result.files[name].decode("utf-8"), nl=False)
    else:
        try:
            write_tree(result.files, output)
        except OutputError as error:
            click.echo(f"extsvc: {error}", err=True)
            sys.exit(EXIT_INVALID_INPUT)
    click.echo(
        f"{'would compile' if dry_run else 'compiled'} {services} service"
        f"{'s' * (services != 1)} into {output} ({_summary(diagnostics)})",
        err=True,
    )


@click.command("validate")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print diagnostics only, no summary.")
@click.option(
    "--host-services",
    "host_services",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The host-services file `extsvc run` will get: warn about host services without a rule.",
)
def validate_command(
    sources: tuple[str, ...], strict: bool, quiet: bool, host_services: Path | None
) -> None:
    """Check service files (all rules, across the whole set); write nothing.

    Also warns about boot hazards: dependencies that could keep a service waiting
    forever (--strict makes them errors).
    """
    from extsvc.compiler.check import check_sources
    from extsvc.compiler.hazards import HazardContext, host_service_ids
    from extsvc.compiler.sources import collect_sources

    files, read_problems = collect_sources(sources)
    _require_sources(len(files), read_problems)
    hazards = HazardContext()
    if host_services is not None:
        try:
            data = host_services.read_bytes()
        except OSError as error:
            raise click.BadParameter(
                f"cannot read {host_services}: {error.strerror}", param_hint="--host-services"
            ) from None
        ids, problems = host_service_ids(str(host_services), data)
        read_problems.extend(problems)
        hazards = HazardContext(host_services=ids, host_services_file=str(host_services))
    result = check_sources(files, hazards)
    diagnostics = [*read_problems, *result.diagnostics]
    _print_diagnostics(diagnostics)
    failed = _fails(diagnostics, strict)
    if not quiet:
        verdict = "invalid" if failed else "ok"
        click.echo(
            f"{len(files)} file{'s' * (len(files) != 1)} {verdict}: {_summary(diagnostics)}",
            err=True,
        )
    if failed:
        sys.exit(EXIT_INVALID_INPUT)


# Kept in step with compiler.format.schemas.SCHEMA_FILES (a test says so); written out
# so that `extsvc schema --help` does not import the schema package.
SCHEMA_KINDS = ("service", "config", "host-services", "plan", "diff", "facts")


@click.command("schema")
@click.option(
    "--kind",
    "which",
    type=click.Choice(SCHEMA_KINDS),
    default="service",
    show_default=True,
    help="service: a service file; config: an ExtensionServiceConfig document; "
    "host-services: the `extsvc run --host-services` file; plan: plan.json; "
    "diff: the report of `extsvc diff --output json`; "
    "facts: the file of `extsvc plan --simulate`.",
)
@click.option("--plan", "which", flag_value="plan", help="Same as --kind plan.")
@click.option("--service", "which", flag_value="service", help="Same as --kind service.")
@click.option("--diff", "which", flag_value="diff", help="Same as --kind diff.")
def schema_command(which: str) -> None:
    """Print the JSON Schema of one input format (for editors and linters)."""
    from extsvc.compiler.format.schemas import schema_text

    text = schema_text(which)
    # Re-serialise so the output is canonical whatever the file's formatting.
    click.echo(json.dumps(json.loads(text), indent=2, sort_keys=True))
