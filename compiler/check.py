"""Check: the stages load -> validate -> model -> resolve, and nothing built.

What ``extsvc validate`` runs (``check_sources``); ``compiler.pipeline.compile``
calls the same four stages and goes on to build and render. Kept apart from building
and rendering so a pre-commit check imports no more than it needs (startup time is
part of its job).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from extsvc.compiler import policy, rules
from extsvc.compiler.format.diagnostics import Diagnostic, Position, Severity, has_errors, sort_key
from extsvc.compiler.format.load import LoadedDocument
from extsvc.compiler.format.sourcemap import SourceMap, format_path
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


def load(sources: Sequence[SourceFile]) -> tuple[list[LoadedDocument], list[Diagnostic]]:
    """Each file's YAML document, with positions (Talos reads one document per file)."""
    documents: list[LoadedDocument] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        found = 0
        for document, problems in source.documents:
            if document is None:
                diagnostics.extend(problems)
                continue
            diagnostics.extend(_hide_environment(problems, document.source_map))
            found += 1
            if found > 1:
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
            documents.append(document)
        if found == 0 and not diagnostics_for(source.name, diagnostics):
            diagnostics.append(
                Diagnostic(
                    source.name,
                    Position(1, 1),
                    Severity.ERROR,
                    "file is empty: expected a service (a mapping with name, container, restart)",
                )
            )
    return documents, diagnostics


def validate(
    documents: Sequence[LoadedDocument],
) -> tuple[list[tuple[dict[str, Any], SourceMap]], list[Diagnostic]]:
    """The schema, then the rules and the x-extsvc block, per document; the trees that
    have no error, each with its source map."""
    valid: list[tuple[dict[str, Any], SourceMap]] = []
    diagnostics: list[Diagnostic] = []
    for document in documents:
        tree, problems = validate_document(document)
        problems = _hide_environment(problems, document.source_map)
        if tree is None:
            diagnostics.extend(problems)
            continue
        diagnostics.extend(rules.check_tree(tree, document.source_map))
        problems.extend(policy.check_block(tree, document.source_map))
        diagnostics.extend(problems)
        if not has_errors(problems):
            valid.append((tree, document.source_map))
    return valid, diagnostics


def model(trees: Sequence[tuple[dict[str, Any], SourceMap]]) -> list[Service]:
    return [service_from_tree(tree, source_map) for tree, source_map in trees]


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


def check_sources(sources: Sequence[SourceFile]) -> CheckResult:
    """Every check, nothing built: for ``extsvc validate`` and the first half of compile.

    ``compiler.review.hazards.check_with_hazards`` adds what could keep boot waiting
    forever (validate asks for it; compile never does).
    """
    documents, loaded = load(sources)
    trees, validated = validate(documents)
    services = model(trees)
    table, resolved = resolve(services)
    diagnostics = [*loaded, *validated, *resolved]
    ordered = tuple(sorted(diagnostics, key=sort_key))
    return CheckResult(ordered, None if has_errors(ordered) else table)
