"""The compiler as a list of stages: load -> validate -> model -> resolve -> build -> render.

``compiler.check.check_sources`` runs the first four (``extsvc validate``);
``compile_sources`` goes on to build and render every file of the output in memory. Writing is
left to the caller (``emit.write_tree``), so a dry run and a test go through
exactly the same code as a real compile.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from compiler import emit
from compiler.check import check_sources
from compiler.diagnostics import Diagnostic, has_errors
from compiler.load import format_path
from compiler.model import Service
from compiler.oci import BuildContext, BuiltConfig, build_config
from compiler.packagedata import SECCOMP_DIR, read_json
from compiler.plan import build_plan, bundle_dir
from compiler.sources import SourceFile

ARCHITECTURES = ("amd64", "arm64")
_MACHINE_TO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str | None:
    """The build host's architecture in OCI terms, or None if we have no profile for it."""
    return _MACHINE_TO_ARCH.get(platform.machine().lower())


@cache
def seccomp_profile(arch: str) -> dict[str, Any]:
    return read_json(SECCOMP_DIR / f"default-{arch}.json")


@dataclass(frozen=True)
class CompileOptions:
    rootfs_base: str
    arch: str


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
    for service in table.services.values():
        result = build_config(service, context)  # build
        errors = list(emit.oci_config_errors(result.config))
        if errors:
            bugs.append(_schema_bug(service, "config.json", errors))
        data = emit.canonical_json(result.config)  # render
        files[f"{bundle_dir(service.name)}/config.json"] = data
        digests[service.name] = hashlib.sha256(data).hexdigest()
        built[service.name] = result
    plan = build_plan(table, digests, rootfs_base=options.rootfs_base, arch=options.arch)
    plan_problems = list(emit.plan_errors(plan))
    if plan_problems:
        first = next(iter(table.services.values()))
        bugs.append(_schema_bug(first, "plan.json", plan_problems))
    files[emit.PLAN_FILE] = emit.canonical_json(plan)
    if bugs:
        return CompileResult(checked.diagnostics + tuple(bugs))
    return CompileResult(checked.diagnostics, files, built)
