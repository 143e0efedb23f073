"""The inputs besides service files: ExtensionServiceConfig documents, host-services
files and environment files; and how ``extsvc validate`` tells the kinds apart.

``extsvc validate services/ node-a/config.yaml hosts.yaml`` takes any mix. Each file
is one kind, told by its first document:

* ``kind: ExtensionServiceConfig`` (or an ``apiVersion``): configuration documents;
* a mapping with none of a service's keys (``name``, ``container``, ``restart``...)
  whose values are all mappings: a host-services file (service id -> rule);
* anything else: a service file (and its problems are the service checks').
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from extsvc.compiler.format.diagnostics import Diagnostic, Severity, did_you_mean
from extsvc.compiler.sources import SourceFile

if TYPE_CHECKING:
    # Imported when there are documents to check: `validate` of service files alone
    # does not pay for them (its start-up time is part of its job).
    from extsvc.compiler.format.extconfig import ServiceConfig
    from extsvc.compiler.resolve import ServiceTable

SERVICE, CONFIG, HOST_SERVICES = "service", "config", "host-services"
CONFIG_KIND = "ExtensionServiceConfig"
_SERVICE_KEYS = frozenset({"name", "container", "restart", "depends", "logToConsole"})


def first_tree(source: SourceFile) -> Any:
    """The file's first document as a plain tree (None when it has none or cannot load)."""
    for document, _ in source.documents:
        return document.tree if document is not None else None
    return None


def kind_of(tree: Any) -> str:
    """SERVICE, CONFIG or HOST_SERVICES, from a file's first document (``first_tree``)."""
    if isinstance(tree, dict) and (tree.get("kind") == CONFIG_KIND or "apiVersion" in tree):
        return CONFIG
    if (
        isinstance(tree, dict)
        and tree
        and not _SERVICE_KEYS & set(tree)
        and all(isinstance(rule, dict) for rule in tree.values())
    ):
        return HOST_SERVICES
    return SERVICE


def input_kind(source: SourceFile) -> str:
    """SERVICE, CONFIG or HOST_SERVICES, from the file's first document."""
    return kind_of(first_tree(source))


@dataclass(frozen=True)
class ConfigSet:
    """The usable documents by service name, and every problem of the documents."""

    configs: dict[str, ServiceConfig]
    diagnostics: tuple[Diagnostic, ...]


def configure(
    table: ServiceTable, config_sources: Sequence[SourceFile]
) -> tuple[dict[str, ServiceConfig], tuple[Diagnostic, ...]]:
    """The compile stage for ``--service-config``: the documents to bake in, by service."""
    if not config_sources:
        return {}, ()
    checked = check_configs(config_sources, {s.name for s in table.services.values()})
    return checked.configs, checked.diagnostics


def check_configs(sources: Sequence[SourceFile], services: Collection[str] | None) -> ConfigSet:
    """Every document of ``sources``, checked alone and as a set against ``services``:
    two documents for one service are an error; one naming no service a warning.
    ``services`` None: the set's services are not known (documents validated alone),
    so names are not checked and every document without an error is usable."""
    if not sources:
        return ConfigSet({}, ())
    from extsvc.compiler.format.extconfig import duplicate_problems, load_configs

    configs: list[ServiceConfig] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        found, problems = load_configs(source.documents)
        configs.extend(found)
        diagnostics.extend(problems)
    duplicates = duplicate_problems(configs)
    diagnostics.extend(d for _, d in duplicates)
    for config in configs:
        if services is not None and config.name not in services:
            hint = did_you_mean(config.name, sorted(services))
            diagnostics.append(
                config.source_map.diagnostic(
                    ("name",),
                    f"no service named '{config.name}' in the set: this document is not used",
                    severity=Severity.WARNING,
                    hint=hint or "the name is the service's, without ext-",
                )
            )
    refused = {name for name, _ in duplicates}
    usable = {
        c.name: c
        for c in configs
        if c.name not in refused and (services is None or c.name in services)
    }
    return ConfigSet(usable, tuple(diagnostics))
