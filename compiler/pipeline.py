"""The compiler as a list of stages: load -> validate -> model -> resolve -> build -> render.

``compile`` is that list, one call per stage (``configure`` checks the
ExtensionServiceConfig documents baked in by ``--service-config`` against the set);
every stage is a pure function of the one before (``compiler.check`` holds the first
three, shared with ``extsvc validate``). The
result is every output file's bytes in memory: writing them is ``compiler.write``'s job,
so ``extsvc compile --dry-run``, ``extsvc diff`` and the golden tests go through exactly
the code of a real compile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from extsvc.compiler.build import CompileOptions, build
from extsvc.compiler.check import load, model, validate
from extsvc.compiler.format.diagnostics import Diagnostic, has_errors, sort_key
from extsvc.compiler.inputs import configure
from extsvc.compiler.oci import BuiltConfig
from extsvc.compiler.render import render
from extsvc.compiler.resolve import resolve
from extsvc.compiler.sources import SourceFile

__all__ = ["CompileOptions", "CompileResult", "compile"]


@dataclass(frozen=True)
class CompileResult:
    diagnostics: tuple[Diagnostic, ...]
    # Relative output path -> bytes; empty when there are errors.
    files: Mapping[str, bytes] = field(default_factory=dict)
    built: Mapping[str, BuiltConfig] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def compile(
    sources: Sequence[SourceFile],
    options: CompileOptions,
    config_sources: Sequence[SourceFile] = (),
) -> CompileResult:
    """``config_sources``: ExtensionServiceConfig documents to bake in (``--service-config``)."""
    documents, loaded = load(sources)
    trees, validated = validate(documents)
    services = model(trees)
    table, resolved = resolve(services)
    configs, configured = configure(table, config_sources)
    diagnostics = tuple(sorted([*loaded, *validated, *resolved, *configured], key=sort_key))
    if has_errors(diagnostics):
        return CompileResult(diagnostics)
    output = build(table, options, sources, configs)
    files, bugs = render(output)
    if bugs:
        return CompileResult(diagnostics + bugs)
    return CompileResult(diagnostics, files, output.configs)
