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

from extsvc.executor.errors import InvalidInputError


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
    """The rules of a host-services file; every problem of the file at once, refused."""
    if path is None:
        return {}
    # The YAML loader and the schema checks are imported only when there is a file:
    # a plan without host services starts without them.
    from extsvc.compiler.format.diagnostics import has_errors
    from extsvc.compiler.format.hostservices import check_host_services

    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(
            f"{path}: cannot read the host-services file: {error.strerror}"
        ) from None
    tree, problems = check_host_services(str(path), data)
    if has_errors(problems):
        errors = sum(d.is_error for d in problems)
        raise InvalidInputError(
            f"the host-services file {path} is invalid ({errors} error{'s' * (errors != 1)}):\n"
            + "\n".join(d.render() for d in problems)
        )
    return {str(service_id): _rule(rule) for service_id, rule in (tree or {}).items()}


def _rule(rule: dict[str, Any]) -> ReadinessRule:
    """One rule the schema accepted (exactly one known key, of the right form)."""
    kind, value = next(iter(rule.items()))
    if kind == "path":
        return ReadinessRule(path=value)
    if kind == "systemd":
        return ReadinessRule(systemd_unit=value)
    if kind == "command":
        if isinstance(value, str):
            return ReadinessRule(command=("/bin/sh", "-c", value))
        return ReadinessRule(command=tuple(value))
    return ReadinessRule(always=True)
