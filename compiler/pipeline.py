"""The compiler as a list of stages: load -> validate -> model -> resolve -> build -> render.

``compiler.check.check_sources`` runs the first four (``extsvc validate``);
``compile_sources`` goes on to build and render every file of the output in memory. Writing is
left to the caller (``emit.write_tree``), so a dry run and a test go through
exactly the same code as a real compile.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from extsvc.compiler import emit
from extsvc.compiler.check import check_sources
from extsvc.compiler.explain import ORIGINS_FILE, origins_document
from extsvc.compiler.format.diagnostics import Diagnostic, has_errors
from extsvc.compiler.format.load import format_path
from extsvc.compiler.format.plan import PLAN_FILE, bundle_dir
from extsvc.compiler.model import Service
from extsvc.compiler.oci import BuildContext, BuiltConfig, Origin, build_config
from extsvc.compiler.packagedata import SECCOMP_DIR, read_json
from extsvc.compiler.plan import build_plan
from extsvc.compiler.sources import SourceFile


@cache
def seccomp_profile(arch: str) -> dict[str, Any]:
    return read_json(SECCOMP_DIR / f"default-{arch}.json")


@dataclass(frozen=True)
class CompileOptions:
    rootfs_base: str
    arch: str
    # `compile --annotate`: each spec names its source file and that file's digest.
    annotate: bool = False


# OCI annotation keys (reverse domain notation, as the runtime-spec asks).
ANNOTATION_SOURCE = "io.extsvc.source"
ANNOTATION_SOURCE_DIGEST = "io.extsvc.source.digest"


def _annotate(built: BuiltConfig, service: Service, data: bytes) -> None:
    """Name the service file (base name, as plan.json does) and its sha256 in the spec."""
    built.config["annotations"] = {
        ANNOTATION_SOURCE: posixpath.basename(service.file.replace("\\", "/")),
        ANNOTATION_SOURCE_DIGEST: "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    built.origins["annotations"] = Origin("extsvc compile --annotate (service file and digest)")


@dataclass(frozen=True)
class CompileResult:
    diagnostics: tuple[Diagnostic, ...]
    # Relative output path -> bytes; empty when there are errors.
    files: Mapping[str, bytes] = field(default_factory=dict)
    built: Mapping[str, BuiltConfig] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _schema_bug(service: Service, what: str, errors: list[Any]) -> Diagnostic:
    details = "; ".join(f"{format_path(e.path) or '(root)'}: {e.message}" for e in errors[:5])
    return service.source_map.diagnostic(
        ("name",),
        f"BUG in extsvc: the generated {what} breaks its schema ({details}); please report it",
    )


def compile_sources(sources: Sequence[SourceFile], options: CompileOptions) -> CompileResult:
    checked = check_sources(sources)
    if checked.table is None:
        return CompileResult(checked.diagnostics)
    table = checked.table
    context = BuildContext(options.rootfs_base, seccomp_profile(options.arch))
    files: dict[str, bytes] = {}
    built: dict[str, BuiltConfig] = {}
    digests: dict[str, str] = {}
    bugs: list[Diagnostic] = []
    source_bytes = {source.name: source.data for source in sources}
    for service in table.services.values():
        result = build_config(service, context)  # build
        if options.annotate:
            _annotate(result, service, source_bytes[service.file])
        errors = list(emit.oci_config_errors(result.config))
        if errors:
            bugs.append(_schema_bug(service, "config.json", errors))
        data = emit.canonical_json(result.config)  # render
        files[f"{bundle_dir(service.name)}/config.json"] = data
        # Where each field came from, for `extsvc explain` (never read by the runtime).
        origins = origins_document(result, data)
        files[f"{bundle_dir(service.name)}/{ORIGINS_FILE}"] = emit.canonical_json(origins)
        digests[service.name] = hashlib.sha256(data).hexdigest()
        built[service.name] = result
    plan = build_plan(table, digests, rootfs_base=options.rootfs_base, arch=options.arch)
    plan_problems = list(emit.plan_errors(plan))
    if plan_problems:
        first = next(iter(table.services.values()))
        bugs.append(_schema_bug(first, "plan.json", plan_problems))
    files[PLAN_FILE] = emit.canonical_json(plan)
    if bugs:
        return CompileResult(checked.diagnostics + tuple(bugs))
    return CompileResult(checked.diagnostics, files, built)
