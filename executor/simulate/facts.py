"""The facts file of ``extsvc plan OUT --simulate FACTS``: what the simulated boot assumes.

Read with the compiler's loader (YAML 1.2, positions) and checked against the
shipped ``facts`` schema (``extsvc schema --kind facts``) with the compiler's
wording, so a bad file is reported as a service file is: ``file:line:col``, the
line, a caret, "did you mean". Durations have the one bound of every input
(``format.quantities``); services and configurations must be the plan's. Times
become seconds from boot; ``None`` means never. Anything not listed never
happens; a service not listed runs until stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, did_you_mean, has_errors
from extsvc.compiler.format.load import iter_documents
from extsvc.compiler.format.plan import Plan
from extsvc.compiler.format.quantities import parse_duration
from extsvc.compiler.format.schemadiag import check_document
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap
from extsvc.executor.errors import InvalidInputError
from extsvc.executor.options import DEFAULT_RESTART_INTERVAL

DEFAULT_UNTIL = 300.0


@dataclass(frozen=True)
class Run:
    """One run of a service: exits with ``exit_code`` after ``after`` seconds, or never."""

    exit_code: int | None = None
    after: float = 0.0
    start_error: str | None = None


FOREVER = Run()


@dataclass(frozen=True)
class Facts:
    until: float = DEFAULT_UNTIL
    restart_interval: float = DEFAULT_RESTART_INTERVAL
    restart_backoff_max: float | None = None
    # thing -> seconds from boot when it becomes true (None: never)
    paths: dict[str, float | None] = field(default_factory=dict)
    network: dict[str, float | None] = field(default_factory=dict)
    time: float | None = None
    host_services: dict[str, float | None] = field(default_factory=dict)
    configurations: dict[str, float | None] = field(default_factory=dict)
    services: dict[str, tuple[Run, ...]] = field(default_factory=dict)

    def runs(self, service_id: str) -> tuple[Run, ...]:
        return self.services.get(service_id) or (FOREVER,)


def _when(value: Any) -> float | None:
    if value is True:
        return 0.0
    if value is False or value == "never":
        return None
    return parse_duration(str(value))


def facts_from_tree(tree: dict[str, Any]) -> Facts:
    """A tree that passed the facts schema -> Facts."""

    def times(key: str) -> dict[str, float | None]:
        return {str(k): _when(v) for k, v in (tree.get(key) or {}).items()}

    def duration(key: str, default: float) -> float:
        value = tree.get(key)
        return default if value is None else parse_duration(value)

    services = {
        str(service_id): tuple(
            Run(
                exit_code=run.get("exit"),
                after=parse_duration(run.get("after", "0s")),
                start_error=run.get("startError"),
            )
            for run in entry["runs"]
        )
        for service_id, entry in (tree.get("services") or {}).items()
    }
    backoff = tree.get("restartBackoffMax")
    return Facts(
        until=duration("until", DEFAULT_UNTIL),
        restart_interval=duration("restartInterval", DEFAULT_RESTART_INTERVAL),
        restart_backoff_max=None if backoff is None else parse_duration(backoff),
        paths=times("paths"),
        network=times("network"),
        time=_when(tree.get("time", "never")),
        host_services=times("hostServices"),
        configurations=times("configurations"),
        services=services,
    )


class FactsError(InvalidInputError):
    """A facts file that cannot be simulated; ``diagnostics`` say where and why."""

    def __init__(self, path: Path, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        count = len(self.diagnostics)
        super().__init__(f"{path}: {count} problem{'s' * (count != 1)}: nothing simulated")


def load_facts(path: Path, plan: Plan | None = None) -> Facts:
    """Read and check a facts file (against ``plan`` too, when given); FactsError with
    every problem found."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise  # said as every command says it (extsvc.cli)
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read the facts file: {error.strerror}") from None
    documents = list(iter_documents(str(path), data))
    document, problems = documents[0] if documents else (None, [])
    if problems:
        raise FactsError(path, problems)
    if document is None or document.tree is None:
        return Facts()
    # `paths: {/dev/x: }` with nothing is a mistake, not an absent key.
    tree, problems = check_document("facts", document, nulls_absent=False)
    if tree is None or has_errors(problems):
        raise FactsError(path, problems)
    problems = [
        *_duration_problems(tree, document.source_map),
        *([] if plan is None else _unknown_names(tree, document.source_map, plan)),
    ]
    if problems:
        raise FactsError(path, problems)
    return facts_from_tree(tree)


def _durations(tree: dict[str, Any]) -> Iterator[tuple[FieldPath, str]]:
    """Every duration of a tree that passed the schema, with its place."""
    for key in ("until", "restartInterval", "restartBackoffMax", "time"):
        yield from (((key,), tree[key]),) if isinstance(tree.get(key), str) else ()
    for key in ("paths", "network", "hostServices", "configurations"):
        for name, value in (tree.get(key) or {}).items():
            if isinstance(value, str) and value != "never":
                yield (key, name), value
    for service_id, entry in (tree.get("services") or {}).items():
        for index, run in enumerate(entry["runs"]):
            if "after" in run:
                yield ("services", service_id, "runs", index, "after"), run["after"]


def _duration_problems(tree: dict[str, Any], source_map: SourceMap) -> Iterator[Diagnostic]:
    for path, text in _durations(tree):
        try:
            parse_duration(text)
        except ValueError as error:
            yield source_map.diagnostic(path, str(error))


def _unknown_names(tree: dict[str, Any], source_map: SourceMap, plan: Plan) -> Iterator[Diagnostic]:
    """Facts about a service the plan does not have: a typo, which would otherwise be
    simulated as 'not listed: runs until stopped'."""
    ids = sorted(plan.services)
    for service_id in tree.get("services") or {}:
        if service_id not in plan.services:
            yield source_map.diagnostic(
                ("services", service_id),
                f"the plan has no service {service_id} ({', '.join(ids) or 'none'})",
                hint=did_you_mean(service_id, ids),
                at_key=True,
            )
    names = sorted(service.name for service in plan.services.values())
    for name in tree.get("configurations") or {}:
        if name not in names:
            yield source_map.diagnostic(
                ("configurations", name),
                f"the plan has no service named {name!r} (configurations are keyed by name)",
                hint=did_you_mean(name, names),
                at_key=True,
            )
