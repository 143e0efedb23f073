"""The facts file of ``extsvc plan OUT --simulate FACTS``: what the simulated boot assumes.

Read with the compiler's loader (YAML 1.2, positions) and checked against the
shipped ``facts`` schema (``extsvc schema --kind facts``), so a bad file is
reported as ``file:line:col``. Times become seconds from boot; ``None`` means
never. Anything not listed never happens; a service not listed runs until stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.compiler.format.load import iter_documents, located
from extsvc.compiler.format.quantities import parse_duration
from extsvc.compiler.format.schemas import validator
from extsvc.executor.errors import InvalidInputError

DEFAULT_UNTIL = 300.0
DEFAULT_RESTART_INTERVAL = 5.0  # Talos


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
        until=parse_duration(tree.get("until", "5m")),
        restart_interval=parse_duration(tree.get("restartInterval", "5s")),
        restart_backoff_max=None if backoff is None else parse_duration(backoff),
        paths=times("paths"),
        network=times("network"),
        time=_when(tree.get("time", "never")),
        host_services=times("hostServices"),
        configurations=times("configurations"),
        services=services,
    )


def load_facts(path: Path) -> Facts:
    """Read and check a facts file; InvalidInputError (file:line:col) when it is wrong."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise  # said as every command says it (extsvc.cli)
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read the facts file: {error.strerror}") from None
    documents = list(iter_documents(str(path), data))
    document, problems = documents[0] if documents else (None, [])
    if problems:
        raise InvalidInputError("\n".join(p.render() for p in problems))
    tree = {} if document is None or document.tree is None else document.tree
    if document is not None and not isinstance(tree, dict):
        raise InvalidInputError(located(document.source_map, (), "expected a mapping of facts"))
    errors = list(validator("facts").iter_errors(tree))
    if errors:
        assert document is not None
        raise InvalidInputError(
            "\n".join(
                located(document.source_map, tuple(error.path), error.message)
                for error in errors[:5]
            )
        )
    return facts_from_tree(tree)
