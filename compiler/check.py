"""Check: load -> validate -> model -> resolve, and nothing built.

What ``extsvc validate`` runs, and the first half of ``compiler.pipeline``.
Kept apart from building and emitting so a pre-commit check imports no more
than it needs (startup time is part of its job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from extsvc.compiler import policy, rules
from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity, has_errors, sort_key
from extsvc.compiler.format.load import SourceMap, format_path, iter_documents
from extsvc.compiler.hazards import HazardContext, boot_hazards
from extsvc.compiler.model import Service, service_from_tree
from extsvc.compiler.resolve import ServiceTable, resolve
from extsvc.compiler.sources import SourceFile
from extsvc.compiler.validate import validate_document


@dataclass(frozen=True)
class CheckResult:
    diagnostics: tuple[Diagnostic, ...]
    table: ServiceTable | None

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _load_services(sources: Sequence[SourceFile]) -> tuple[list[Service], list[Diagnostic]]:
    services: list[Service] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        documents = 0
        for document, problems in iter_documents(source.name, source.data):  # load
            if document is None:
                diagnostics.extend(problems)
                continue
            diagnostics.extend(_hide_environment(problems, document.source_map))
            documents += 1
            if documents > 1:
                # go-yaml's Decode reads one document: Talos runs the first, ignores the rest.
                diagnostics.append(
                    document.source_map.diagnostic(
                        (),
                        "Talos reads only the first YAML document of a service file; "
                        "this one is ignored",
                        severity=Severity.WARNING,
                        hint="one service per file: move it to a file of its own",
                    )
                )
                break
            tree, problems = validate_document(document)  # validate
            problems = _hide_environment(problems, document.source_map)
            if tree is None:
                diagnostics.extend(problems)
                continue
            diagnostics.extend(rules.check_tree(tree, document.source_map))
            problems.extend(policy.check_block(tree, document.source_map))
            diagnostics.extend(problems)
            if not has_errors(problems):
                services.append(service_from_tree(tree, document.source_map))  # model
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


def _hide_environment(problems: list[Diagnostic], source_map: SourceMap) -> list[Diagnostic]:
    """Problems inside ``container.environment`` (a YAML tag, a wrong type) without the
    entry's value on the source line: it may be a secret."""
    environment = format_path(rules.ENVIRONMENT)
    return [
        rules.hide_environment(d, source_map)
        if d.field == environment or d.field.startswith(environment + "[")
        else d
        for d in problems
    ]


def diagnostics_for(file: str, diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.file == file for d in diagnostics)


def check_sources(
    sources: Sequence[SourceFile], hazards: HazardContext | None = None
) -> CheckResult:
    """Every check, nothing built: for ``extsvc validate`` and the first half of compile.

    With ``hazards`` (validate), also warn about what could keep boot waiting forever.
    """
    services, diagnostics = _load_services(sources)
    table, problems = resolve(services)  # resolve
    diagnostics.extend(problems)
    if hazards is not None and not has_errors(diagnostics):
        diagnostics.extend(boot_hazards(table, hazards))  # boot hazards
    ordered = tuple(sorted(diagnostics, key=sort_key))
    return CheckResult(ordered, None if has_errors(ordered) else table)
