"""Semantic rules on one service, beyond what the input schema can say.

Rules that need the whole set of services (duplicate names, references to
other services, cycles) are in ``compiler.resolve``.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic, Severity
from compiler.model import Service


def check_service(service: Service) -> Iterator[Diagnostic]:
    yield from _environment(service)
    propagation = service.container.security.rootfs_propagation
    if propagation in ("unbindable", "runbindable"):
        # runc bind-mounts the rootfs onto itself while preparing it; an
        # unbindable parent makes that mount fail (EINVAL, seen with runc 1.1.5).
        yield service.source_map.diagnostic(
            ("container", "security", "rootfsPropagation"),
            f"runc cannot start a container with rootfsPropagation '{propagation}' "
            "(its own bind mount of the rootfs fails)",
            severity=Severity.WARNING,
        )
    if service.container.environment_file is not None:
        yield service.source_map.diagnostic(
            ("container", "environmentFile"),
            "environmentFile is deprecated; the service waits for the file and reads it at start",
            severity=Severity.WARNING,
            hint="use an ExtensionServiceConfig document with 'environment' instead",
            at_key=True,
        )


def _environment(service: Service) -> Iterator[Diagnostic]:
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(service.container.environment):
        path = ("container", "environment", index)
        key, has_equals, _ = entry.partition("=")
        if not has_equals:
            yield service.source_map.diagnostic(
                path,
                f"environment entry {entry!r} has no '='; Talos drops it",
                severity=Severity.WARNING,
                hint=f"write '{entry}=' for an empty value",
            )
            continue
        if key in first_seen:
            first = service.source_map.value_position(("container", "environment", first_seen[key]))
            yield service.source_map.diagnostic(
                path,
                f"{key} is set again (first on line {first.line}); both entries are kept "
                "and most programs read the first",
                severity=Severity.WARNING,
            )
        else:
            first_seen[key] = index
