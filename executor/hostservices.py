"""The ``--host-services`` file: how to tell that a service outside the plan is up.

Talos knows its own services (cri, containerd, udevd...); a host running extsvc
does not, so each external id a plan waits for needs a readiness rule::

    cri:
      path: /run/containerd/containerd.sock   # ready when the path exists
    udevd:
      systemd: systemd-udevd.service           # ready when the unit is active
    dns:
      command: [getent, hosts, example.com]    # ready when the command exits 0
    containerd:
      ready: true                              # always ready

An id without a rule is never ready: its dependents wait and say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extsvc.compiler.format.load import SourceMap, iter_documents, located
from extsvc.executor.errors import InvalidInputError

RULE_KINDS = ("path", "systemd", "command", "ready")


@dataclass(frozen=True)
class ReadinessRule:
    """Exactly one of the fields is set."""

    path: str | None = None
    systemd_unit: str | None = None
    command: tuple[str, ...] | None = None
    always: bool = False

    def describe(self) -> str:
        if self.path is not None:
            return f"path {self.path!r} exists"
        if self.systemd_unit is not None:
            return f"systemd unit {self.systemd_unit!r} is active"
        if self.command is not None:
            return f"command {' '.join(self.command)!r} succeeds"
        return "always ready"


def load_host_services(path: Path | None) -> dict[str, ReadinessRule]:
    if path is None:
        return {}
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(
            f"{path}: cannot read the host-services file: {error.strerror}"
        ) from None
    # The compiler's loader: YAML 1.2 as for service files, and positions for errors.
    documents = list(iter_documents(str(path), data))
    document, problems = documents[0] if documents else (None, [])
    if problems:
        first = problems[0]
        raise InvalidInputError(
            f"{first.file}:{first.position.line}:{first.position.col}: {first.message}"
        )
    if document is None or document.tree is None:
        return {}
    if not isinstance(document.tree, dict):
        raise InvalidInputError(
            located(document.source_map, (), "expected a mapping of service id to readiness rule")
        )
    return {
        str(service_id): _parse_rule(document.source_map, str(service_id), rule)
        for service_id, rule in document.tree.items()
    }


def _parse_rule(source_map: SourceMap, service_id: str, rule: Any) -> ReadinessRule:
    if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in RULE_KINDS:
        raise InvalidInputError(
            located(source_map, (service_id,), f"expected exactly one of {', '.join(RULE_KINDS)}")
        )
    kind, value = next(iter(rule.items()))
    if kind == "path" and isinstance(value, str) and value.startswith("/"):
        return ReadinessRule(path=value)
    if kind == "systemd" and isinstance(value, str) and value:
        return ReadinessRule(systemd_unit=value)
    if kind == "command":
        if isinstance(value, str) and value.strip():
            return ReadinessRule(command=("/bin/sh", "-c", value))
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return ReadinessRule(command=tuple(value))
    if kind == "ready" and value is True:
        return ReadinessRule(always=True)
    expected = {
        "path": "an absolute path",
        "systemd": "a unit name",
        "command": "a shell string or a list of arguments",
        "ready": "true",
    }[kind]
    raise InvalidInputError(
        located(source_map, (service_id, kind), f"expected {expected}, got {value!r}")
    )
