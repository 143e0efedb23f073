"""The compiler as a list of stages: load -> validate -> model -> resolve -> build -> render.

``check_sources`` stops after resolve (``extsvc validate``); ``compile_sources``
goes on to build and render every file of the output in memory. Writing is
left to the caller (``emit.write_tree``), so a dry run and a test go through
exactly the same code as a real compile.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from compiler import emit, rules
from compiler.diagnostics import Diagnostic, Position, Severity, has_errors, sort_key
from compiler.load import format_path, iter_documents
from compiler.model import Service, service_from_tree
from compiler.oci import BuildContext, BuiltConfig, build_config
from compiler.plan import bundle_dir, build_plan
from compiler.resolve import ServiceTable, resolve
from compiler.sources import SourceFile
from compiler.validate import validate_document

ARCHITECTURES = ("amd64", "arm64")
_MACHINE_TO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str | None:
    """The build host's architecture in OCI terms, or None if we have no profile for it."""
    return _MACHINE_TO_ARCH.get(platform.machine().lower())


@cache
def seccomp_profile(arch: str) -> dict[str, Any]:
    text = resources.files("compiler.seccomp").joinpath(f"default-{arch}.json").read_text("utf-8")
    profile: dict[str, Any] = json.loads(text)
    return profile


@dataclass(frozen=True)
class CompileOptions:
    rootfs_base: str
    arch: str


@dataclass(frozen=True)
class CheckResult:
    diagnostics: tuple[Diagnostic, ...]
    table: ServiceTable | None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


@dataclass(frozen=True)
class CompileResult:
    diagnostics: tuple[Diagnostic, ...]
    # Relative output path -> bytes; empty when there are errors.
    files: Mapping[str, bytes] = field(default_factory=dict)
    built: Mapping[str, BuiltConfig] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _load_services(sources: Sequence[SourceFile]) -> tuple[list[Service], list[Diagnostic]]:
    services: list[Service] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        documents = 0
        for document, problems in iter_documents(source.name, source.data):  # load
            diagnostics.extend(problems)
            if document is None:
                continue
            documents += 1
            if documents > 1:
                diagnostics.append(
                    document.source_map.diagnostic((), "a service file holds one YAML document; found another")
                )
                break
            tree, problems = validate_document(document)  # validate
            diagnostics.extend(problems)
            if problems or tree is None:
                continue
            service = service_from_tree(tree, document.source_map)  # model
            diagnostics.extend(rules.check_service(service))
            services.append(service)
        if documents == 0 and not diagnostics_for(source.name, diagnostics):
            diagnostics.append(
                Diagnostic(
                    source.name,
                    Position(1, 1),
                    Severity.ERROR,
                    "file is empty: expected a service (a mapping with name, container, restart)",
                )
            )
    return services, diagnostics


def diagnostics_for(file: str, diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.file == file for d in diagnostics)


def check_sources(sources: Sequence[SourceFile]) -> CheckResult:
    """Every check, nothing built: for ``extsvc validate`` and the first half of compile."""
    services, diagnostics = _load_services(sources)
    table, problems = resolve(services)  # resolve
    diagnostics.extend(problems)
    ordered = tuple(sorted(diagnostics, key=sort_key))
    return CheckResult(ordered, None if has_errors(ordered) else table)


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
