"""Compiled outputs for the review tools: read from OUT, compiled in memory, or taken from git.

This is the I/O edge of ``extsvc diff`` and ``extsvc explain``; the
comparison itself (``compiler.review.diff``) only sees ``CompiledOutput`` values.
Whatever the side is — a compiled OUT directory, a source directory compiled
in memory, or a source directory as it was at a git revision — it becomes the
same mapping of relative path -> bytes that ``extsvc compile`` would write,
and is parsed by one function, so all three are compared alike.

``git_snapshot`` never checks anything out: ``git archive REV:DIR`` streams
the tree into a temporary directory that is removed afterwards, so the
working tree, the index and HEAD are left exactly as they were.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, has_errors
from extsvc.compiler.format.plan import (
    CONFIG_FILE,
    ORIGINS_FILE,
    PLAN_FILE,
    PlanError,
    check_plan_schema,
    parse_json,
)
from extsvc.compiler.review.diff import CompiledOutput


class ReviewInputError(Exception):
    """A side cannot be read or compiled; the message says which and why."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


def is_output_dir(path: Path) -> bool:
    return (path / PLAN_FILE).is_file()


def _parse(data: bytes, where: str, what: str) -> Any:
    try:
        return parse_json(data, where, what)
    except PlanError as error:
        raise ReviewInputError(str(error)) from None


def _checked_plan(data: bytes, where: str) -> Any:
    """plan.json parsed and checked against its schema (errors at their line:col)."""
    plan = _parse(data, where, "plan")
    try:
        check_plan_schema(plan, data, where)
    except PlanError as error:
        raise ReviewInputError(str(error)) from None
    return plan


def output_from_files(files: Mapping[str, bytes], label: str) -> CompiledOutput:
    """Parse what compile writes (plan.json, bundles/*/config.json, origins.json)."""
    if PLAN_FILE not in files:
        raise ReviewInputError(f"{label}: no {PLAN_FILE}")
    return _output(_checked_plan(files[PLAN_FILE], f"{label}/{PLAN_FILE}"), files, label)


def _output(plan: Any, files: Mapping[str, bytes], label: str) -> CompiledOutput:
    """The output of ``files`` with ``plan`` (already parsed and checked)."""
    configs: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    for service_id, entry in plan["services"].items():
        config_name = f"{entry['bundle']}/{CONFIG_FILE}"
        if config_name not in files:
            raise ReviewInputError(f"{label}: {service_id}: no {config_name}")
        configs[service_id] = _parse(files[config_name], f"{label}/{config_name}", "config")
        origins_name = f"{entry['bundle']}/{ORIGINS_FILE}"
        if origins_name in files:
            origins[service_id] = _parse(files[origins_name], f"{label}/{origins_name}", "origins")
    return CompiledOutput(plan=plan, configs=configs, label=label, origins=origins, files=files)


def load_output_dir(path: Path, label: str | None = None) -> CompiledOutput:
    """A compiled OUT as the review tools read it: plan.json (read and parsed once) and
    the files of each bundle it names."""
    label = label or str(path)
    try:
        data = (path / PLAN_FILE).read_bytes()
        plan = _checked_plan(data, f"{label}/{PLAN_FILE}")
        files = {PLAN_FILE: data}
        for entry in plan["services"].values():
            root = path / entry["bundle"]
            # config.json, origins.json and what else compile put there (configuration files).
            for file in sorted(root.rglob("*")) if root.is_dir() else ():
                if file.is_file() and not file.is_symlink():
                    files[f"{entry['bundle']}/{file.relative_to(root).as_posix()}"] = (
                        file.read_bytes()
                    )
    except PermissionError:
        raise  # said as every command says it (extsvc.cli)
    except OSError as error:
        raise ReviewInputError(f"{path}: cannot read: {error.strerror or error}") from None
    return _output(plan, files, label)


def compile_directory(
    path: Path, *, rootfs_base: str, arch: str, label: str | None = None
) -> CompiledOutput:
    """A source directory (or one service file) compiled in memory, exactly as ``extsvc
    compile`` would.

    ExtensionServiceConfig documents in the directory are baked in, as
    ``--service-config`` would (told apart by content, as ``extsvc validate`` does);
    a host-services file there is left out.
    """
    from extsvc.compiler.inputs import CONFIG, SERVICE, input_kind
    from extsvc.compiler.pipeline import CompileOptions, compile
    from extsvc.compiler.sources import SourceFile, collect_sources

    label = label or str(path)
    found, problems = collect_sources([str(path)])
    # Diagnostics name files as the user knows them (REV:DIR/x.yaml, not a temporary
    # path); a file given itself is named by its label alone.
    in_directory = path.is_dir()
    by_kind: dict[str, list[SourceFile]] = {}
    for source in found:
        name = f"{label}/{Path(source.name).name}" if in_directory else label
        renamed = SourceFile(name, source.data)
        by_kind.setdefault(input_kind(renamed), []).append(renamed)
    sources = by_kind.get(SERVICE, [])
    if not sources:
        raise ReviewInputError(f"{label}: no service files (*.yaml) and no {PLAN_FILE}", problems)
    options = CompileOptions(rootfs_base=rootfs_base, arch=arch)
    result = compile(sources, options, by_kind.get(CONFIG, []))
    if not result.ok or has_errors(problems):
        raise ReviewInputError(f"{label}: does not compile", [*problems, *result.diagnostics])
    return output_from_files(result.files, label)


def _git(args: Sequence[str], cwd: Path) -> bytes:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise ReviewInputError("git is not installed (needed for --git)") from None
    except OSError as error:
        raise ReviewInputError(f"cannot run git in {cwd}: {error.strerror or error}") from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip() or "failed"
        raise ReviewInputError(f"git {' '.join(args)}: {message}")
    return completed.stdout


@contextlib.contextmanager
def git_snapshot(revision: str, directory: Path) -> Iterator[Path]:
    """``directory`` as it was at ``revision``, in a temporary directory (removed after)."""
    if not directory.is_dir():
        raise ReviewInputError(f"{directory}: not a directory")
    prefix = _git(["rev-parse", "--show-prefix"], directory).decode().strip()
    top = Path(_git(["rev-parse", "--show-toplevel"], directory).decode().strip())
    # From the top: in a subdirectory, git archive would also filter by that subdirectory.
    archive = _git(["archive", "--format=tar", f"{revision}:{prefix}"], top)
    with tempfile.TemporaryDirectory(prefix="extsvc-git-") as temporary:
        root = Path(temporary)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        yield root
