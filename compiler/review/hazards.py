"""Boot hazards: dependencies that could keep a service waiting forever (``extsvc validate``).

Every check here is about the boot, not the file: the set is valid, but a
service may never start because what it waits for never comes. They are
warnings (``--strict`` makes them fail validation):

* a ``path`` that no service of the set provides (none mounts a writable host
  directory holding it) and that is not a usual host path;
* ``configuration: true`` with no ExtensionServiceConfig supplied for it;
* a host service (``service: cri``) with no readiness rule in the
  ``--host-services`` file, or with no such file given at all;
* a dependency on a one-shot (``restart: never``): if that run fails, the
  dependent waits forever (Talos's "up" for a one-shot is "finished with exit 0").

Pure: the set and what the caller knows about the host come in as values.
``validate`` runs them (``check_with_hazards``); ``compile`` does not: it cannot
know what the target host will provide, and a configuration may well arrive at
run time, so compiling stays quiet about them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from extsvc.compiler.check import CheckResult, check_sources
from extsvc.compiler.format.diagnostics import Diagnostic, Severity, sort_key
from extsvc.compiler.format.serviceids import is_extension_id
from extsvc.compiler.format.servicepolicy import RestartPolicy
from extsvc.compiler.model import DependencyKind, Service
from extsvc.compiler.resolve import ServiceTable
from extsvc.compiler.sources import SourceFile

# Paths that exist on any Linux host extsvc runs on (and, for most, on Talos).
# Anything else under /dev, /proc or /sys depends on drivers and modules.
USUAL_HOST_PATHS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/dev/console",
        "/dev/full",
        "/dev/kmsg",
        "/dev/mqueue",
        "/dev/null",
        "/dev/ptmx",
        "/dev/pts",
        "/dev/random",
        "/dev/shm",
        "/dev/tty",
        "/dev/urandom",
        "/dev/zero",
        "/etc",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/os-release",
        "/home",
        "/lib",
        "/mnt",
        "/opt",
        "/proc",
        "/proc/self",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/sys/fs/cgroup",
        "/tmp",
        "/usr",
        "/usr/local",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/run",
    }
)


@dataclass(frozen=True)
class HazardContext:
    """What the caller knows about the target host."""

    # Service ids with a readiness rule; None when no --host-services file was given.
    host_services: frozenset[str] | None = None
    host_services_file: str | None = None
    # Names of services an ExtensionServiceConfig document was supplied for.
    configurations: frozenset[str] = frozenset()


def _normal(path: str) -> str:
    return "/" + "/".join(part for part in path.split("/") if part)


def _provided_by(path: str, table: ServiceTable, waiter: Service) -> str | None:
    """The id of another service that mounts a writable host directory holding ``path``."""
    target = _normal(path)
    for service in table.services.values():
        if service is waiter:
            continue
        for mount in service.container.mounts:
            source = mount.source or ""
            if not source.startswith("/") or "ro" in (mount.options or ()):
                continue
            source = _normal(source)
            if target == source or target.startswith(source.rstrip("/") + "/"):
                return service.id
    return None


def _paths(service: Service, table: ServiceTable) -> Iterator[Diagnostic]:
    for dependency in service.depends:
        if dependency.kind is not DependencyKind.PATH:
            continue
        path = str(dependency.value)
        if _normal(path) in USUAL_HOST_PATHS or _provided_by(path, table, service):
            continue
        yield service.source_map.diagnostic(
            dependency.field_path,
            f"no service of this set provides {path} and it is not a usual host path: "
            f"unless something else creates it, {service.id} waits forever",
            severity=Severity.WARNING,
            hint="check the path, or mount a writable host directory holding it "
            "into the service that creates it",
        )


def _configuration(service: Service, context: HazardContext) -> Iterator[Diagnostic]:
    if service.name in context.configurations:
        return
    for dependency in service.depends:
        if dependency.kind is DependencyKind.CONFIGURATION:
            yield service.source_map.diagnostic(
                dependency.field_path,
                f"no ExtensionServiceConfig named '{service.name}' was supplied: "
                f"{service.id} waits until one appears in the executor's config directory",
                severity=Severity.WARNING,
            )


def _host_services(service: Service, context: HazardContext) -> Iterator[Diagnostic]:
    for dependency in service.depends:
        if dependency.kind is not DependencyKind.SERVICE:
            continue
        target = str(dependency.value)
        if is_extension_id(target):
            continue
        if context.host_services is None:
            message = (
                f"'{target}' is a host service: `extsvc run` needs a readiness rule for it "
                f"(--host-services), or {service.id} waits forever"
            )
            hint = "pass the host-services file to validate with --host-services FILE"
        elif target not in context.host_services:
            message = (
                f"no readiness rule for host service '{target}' in "
                f"{context.host_services_file}: {service.id} waits forever"
            )
            hint = f"add '{target}:' with one of path, systemd, command, ready"
        else:
            continue
        yield service.source_map.diagnostic(
            dependency.field_path, message, severity=Severity.WARNING, hint=hint
        )


def _one_shots(service: Service, table: ServiceTable) -> Iterator[Diagnostic]:
    for dependency in service.depends:
        if dependency.kind is not DependencyKind.SERVICE:
            continue
        target = table.services.get(str(dependency.value))
        if target is None or target.restart is not RestartPolicy.NEVER:
            continue
        yield service.source_map.diagnostic(
            dependency.field_path,
            f"{target.id} runs once (restart: never): if that run fails, "
            f"{service.id} waits forever",
            severity=Severity.WARNING,
            hint=f"give {target.id} 'restart: untilSuccess' if it may fail and be retried",
        )


def host_service_ids(file: str, data: bytes) -> tuple[frozenset[str] | None, list[Diagnostic]]:
    """The service ids a host-services file has rules for, and its problems (as
    ``extsvc run`` would report them)."""
    from extsvc.compiler.format.hostservices import check_host_services

    tree, problems = check_host_services(file, data)
    return (None if tree is None else frozenset(tree)), problems


def boot_hazards(table: ServiceTable, context: HazardContext) -> list[Diagnostic]:
    """Every hazard of the set, as warnings, in service order."""
    diagnostics: list[Diagnostic] = []
    for service in table.services.values():
        diagnostics.extend(_paths(service, table))
        diagnostics.extend(_configuration(service, context))
        diagnostics.extend(_host_services(service, context))
        diagnostics.extend(_one_shots(service, table))
    return diagnostics


def check_with_hazards(sources: Sequence[SourceFile], context: HazardContext) -> CheckResult:
    """``check_sources``, and the boot hazards of the set when it has no error."""
    result = check_sources(sources)
    if result.table is None:
        return result
    diagnostics = [*result.diagnostics, *boot_hazards(result.table, context)]
    return CheckResult(tuple(sorted(diagnostics, key=sort_key)), result.table)
