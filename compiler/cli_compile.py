"""`extsvc compile | validate | schema`: printing and exit codes around the pipeline."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from extsvc.compiler.defaults import DEFAULT_ROOTFS_BASE
from extsvc.compiler.format.diagnostics import Diagnostic, mask_entry, sort_key
from extsvc.compiler.format.exitcodes import EXIT_INVALID_INPUT

if TYPE_CHECKING:
    # Not at run time: it imports the YAML loader, which `extsvc schema` does not need.
    from extsvc.compiler.sources import SourceFile


# `--format github`: annotations on stdout, where GitHub Actions reads workflow commands.
FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github"]),
    default="text",
    show_default=True,
    help="github: print diagnostics as GitHub Actions annotations (on stdout).",
)


def _print_diagnostics(diagnostics: Sequence[Diagnostic], output_format: str = "text") -> None:
    if not diagnostics:
        return
    # One write: a hostile file can have 50,000 diagnostics.
    if output_format == "github":
        click.echo("\n".join(diagnostic.github_annotation() for diagnostic in diagnostics))
    else:
        click.echo("\n".join(diagnostic.render() for diagnostic in diagnostics), err=True)


def _summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def _fails(diagnostics: Sequence[Diagnostic], strict: bool) -> bool:
    return any(d.is_error or strict for d in diagnostics)


def _require_sources(found: int, diagnostics: Sequence[Diagnostic], output_format: str) -> None:
    # An empty set is almost always a wrong path; compiling it would replace a
    # previous OUT with an empty plan.
    if found == 0:
        _print_diagnostics(diagnostics, output_format)
        click.echo("extsvc: no service files found; nothing done", err=True)
        sys.exit(EXIT_INVALID_INPUT)


def _check_rootfs_base(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.startswith("/"):
        raise click.BadParameter("must be an absolute path")
    return value


# Paths are click.Path(readable=False): a denied path is said by the dispatcher, as
# every command says it (extsvc.cli), not by click in other words.
@click.command("compile")
@click.argument("sources", nargs=-1, required=True, metavar="SRC...")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(readable=False, path_type=Path),
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
@click.option(
    "--service-config",
    "service_configs",
    multiple=True,
    metavar="PATH",
    help="ExtensionServiceConfig documents to bake into the bundles (a file, or a directory "
    "of *.yaml; repeatable).",
)
@click.option(
    "--show-values",
    is_flag=True,
    help="With --dry-run: print environment values (masked by default: KEY=***).",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--annotate",
    is_flag=True,
    help="Name each spec's source file and its sha256 in the spec's annotations.",
)
@FORMAT_OPTION
def compile_command(
    sources: tuple[str, ...],
    output: Path,
    rootfs_base: str,
    arch: str | None,
    dry_run: bool,
    service_configs: tuple[str, ...],
    show_values: bool,
    strict: bool,
    annotate: bool,
    output_format: str,
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
    _require_sources(len(files), read_problems, output_format)
    config_files, config_problems = collect_sources(service_configs)
    read_problems.extend(config_problems)
    options = CompileOptions(rootfs_base=rootfs_base, arch=target_arch, annotate=annotate)
    result = compile(files, options, config_files)
    diagnostics = [*read_problems, *result.diagnostics]
    _print_diagnostics(diagnostics, output_format)
    if _fails(diagnostics, strict) or not result.ok:
        click.echo(f"extsvc: nothing written: {_summary(diagnostics)}", err=True)
        sys.exit(EXIT_INVALID_INPUT)
    services = len(result.built)
    if dry_run:
        # As `quadlet -dryrun`: every file that would be written, under a line naming it.
        for name in sorted(result.files):
            click.echo(f"---{output / name}---")
            click.echo(_dry_run_text(name, result.files[name], show_values), nl=False)
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


def _dry_run_text(name: str, data: bytes, show_values: bool) -> str:
    """One output file as ``--dry-run`` prints it: never a secret unless asked for.

    Environment values are masked (``KEY=***``, as diagnostics mask them) unless
    ``show_values``; a baked ExtensionServiceConfig file is never shown, only its size.
    """
    from extsvc.compiler.canonical import canonical_json
    from extsvc.compiler.format.extconfig import is_baked_config_file
    from extsvc.compiler.format.plan import CONFIG_FILE

    if is_baked_config_file(name):
        return f"({len(data)} bytes of an ExtensionServiceConfig file, not shown)\n"
    if show_values or not name.endswith(f"/{CONFIG_FILE}"):
        return data.decode("utf-8")
    config = json.loads(data)
    process = config.get("process", {})
    if process.get("env"):
        process["env"] = [mask_entry(entry) for entry in process["env"]]
    return canonical_json(config).decode("utf-8")


@click.command("validate")
@click.argument("sources", nargs=-1, metavar="[SRC]...")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print diagnostics only, no summary.")
@click.option(
    "--host-services",
    "host_services",
    type=click.Path(readable=False, dir_okay=False, path_type=Path),
    help="The host-services file `extsvc run` will get: warn about host services without a rule.",
)
@click.option(
    "--with",
    "context",
    multiple=True,
    metavar="PATH",
    help="The rest of the set (files or directories): read, checked against, not reported on "
    "(pre-commit: validate the changed files --with the whole folder).",
)
@click.option(
    "--env-file",
    "env_files",
    multiple=True,
    type=click.Path(readable=False, dir_okay=False, path_type=Path),
    help="An environment file (environmentFile) to check, offline (repeatable).",
)
@FORMAT_OPTION
def validate_command(
    sources: tuple[str, ...],
    strict: bool,
    quiet: bool,
    host_services: Path | None,
    context: tuple[str, ...],
    env_files: tuple[Path, ...],
    output_format: str,
) -> None:
    """Check service files, ExtensionServiceConfig documents and host-services files, in
    any mix (each file's kind is told by its content), as one set; write nothing.

    Also warns about boot hazards: dependencies that could keep a service waiting
    forever (--strict makes them errors).
    """
    from extsvc.compiler.sources import collect_sources

    if not sources and not env_files:
        raise click.UsageError("nothing to check: give SRC... or --env-file FILE")
    files, read_problems = collect_sources(sources)
    if sources:
        _require_sources(len(files), read_problems, output_format)
    extra: list[SourceFile] = []
    if host_services is not None:
        extra.append(_read_option_file(host_services, "--host-services"))
    # The changed files are usually in the --with folder too: read and checked once.
    context_files, _ = collect_sources(context, already=[*files, *extra])
    diagnostics = [*read_problems, *_check_set(files, extra, context_files)]
    for env_file in env_files:
        diagnostics.extend(_check_env_file(_read_option_file(env_file, "--env-file")))
    diagnostics.sort(key=sort_key)
    _print_diagnostics(diagnostics, output_format)
    failed = _fails(diagnostics, strict)
    if not quiet:
        count = len(files) + len(extra) + len(env_files)
        click.echo(f"{_verdict(count, diagnostics, strict)}: {_summary(diagnostics)}", err=True)
    if failed:
        sys.exit(EXIT_INVALID_INPUT)


def _verdict(count: int, diagnostics: Sequence[Diagnostic], strict: bool) -> str:
    """``3 files ok``, ``2 files invalid``, or ``1 of 3 files invalid`` when only some are."""
    files = f"{count} file{'s' * (count != 1)}"
    # A directory's problem ("no *.yaml files") has no file of its own to count.
    invalid = min(len({d.file for d in diagnostics if d.is_error or strict}), count)
    if not _fails(diagnostics, strict):
        return f"{files} ok"
    return f"{files} invalid" if invalid == count else f"{invalid} of {files} invalid"


def _read_option_file(path: Path, option: str) -> SourceFile:
    from extsvc.compiler.sources import SourceFile

    try:
        return SourceFile(str(path), path.read_bytes())
    except PermissionError:
        raise  # said as every command says it (extsvc.cli)
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {path}: {error.strerror}", param_hint=option
        ) from None


def _check_set(
    files: Sequence[SourceFile],
    host_services_files: Sequence[SourceFile],
    context: Sequence[SourceFile],
) -> list[Diagnostic]:
    """The diagnostics of ``files`` and ``host_services_files``, checked as one set with
    ``context`` (whose own problems are not reported)."""
    from extsvc.compiler.inputs import CONFIG, HOST_SERVICES, check_configs, first_tree, kind_of
    from extsvc.compiler.review.hazards import HazardContext, check_with_hazards, host_service_ids

    reported = {f.name for f in (*files, *host_services_files)}
    # Each file's first document, loaded once: it tells the file's kind and a service's name.
    by_kind: dict[str, list[tuple[SourceFile, Any]]] = {}
    for source in (*files, *context):
        tree = first_tree(source)
        by_kind.setdefault(kind_of(tree), []).append((source, tree))
    hosts = [*host_services_files, *(source for source, _ in by_kind.pop(HOST_SERVICES, []))]
    configs = [source for source, _ in by_kind.pop(CONFIG, [])]
    service_trees = [pair for pairs in by_kind.values() for pair in pairs]
    services = [source for source, _ in service_trees]
    diagnostics: list[Diagnostic] = []
    ids: frozenset[str] | None = None
    for host_file in hosts:
        found, problems = host_service_ids(host_file.name, host_file.data)
        diagnostics.extend(problems)
        if found is not None:
            ids = found | (ids or frozenset())
    names = {
        tree["name"]
        for _, tree in service_trees
        if isinstance(tree, dict) and isinstance(tree.get("name"), str)
    }
    config_set = check_configs(configs, names if services else None)
    diagnostics.extend(config_set.diagnostics)
    if services:
        hazards = HazardContext(
            host_services=ids,
            host_services_file=hosts[0].name if hosts else None,
            configurations=frozenset(config_set.configs),
        )
        diagnostics.extend(check_with_hazards(services, hazards).diagnostics)
    return [d for d in diagnostics if d.file in reported]


def _check_env_file(source: SourceFile) -> list[Diagnostic]:
    from extsvc.compiler.format.envfile import parse_env_file

    _, problems = parse_env_file(source.name, source.data)
    return problems


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
