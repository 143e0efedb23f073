"""Build: the service table -> plan.json, the executor's only input besides bundles.

Pure. Bundle digests are passed in: they are digests of each config.json's canonical
bytes, which ``compiler.build`` serialises before it builds the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extsvc import __version__
from extsvc.compiler.format.plan import (
    NETWORK_CHECKS,
    PLAN_API_VERSION,
    bundle_dir,
    creatable_mount_source,
    source_basename,
)
from extsvc.compiler.format.servicepolicy import MountSource, mount_source_to_plan, policy_to_plan
from extsvc.compiler.model import DependencyKind, Service
from extsvc.compiler.oci import rootfs_path
from extsvc.compiler.resolve import ServiceTable, extension_dependencies, host_dependencies


def _mount_sources(service: Service) -> list[str | dict[str, Any]]:
    # Talos MkdirAll(0700)s each missing mount source before start; extsvc does
    # so only below /var and /run (``creatable_mount_source``): other sources,
    # such as /dev or /etc/hosts, must exist already. "tmpfs" or "proc" are not paths.
    # x-extsvc mountSources may give one another owner and mode.
    sources = (
        m.source
        for m in service.container.mounts
        if m.source is not None and creatable_mount_source(m.source)
    )
    owned = service.extsvc.mount_sources if service.extsvc is not None else {}
    return [
        mount_source_to_plan(owned.get(source) or MountSource(source))
        for source in dict.fromkeys(sources)
    ]


def _depends(service: Service) -> dict[str, Any]:
    kinds = {dependency.kind for dependency in service.depends}
    paths = [str(d.value) for d in service.depends if d.kind is DependencyKind.PATH]
    network: set[str] = set()
    for dependency in service.depends:
        if dependency.kind is DependencyKind.NETWORK and isinstance(dependency.value, tuple):
            network.update(dependency.value)
    depends: dict[str, Any] = {
        "services": list(extension_dependencies(service)),
        "hostServices": list(host_dependencies(service)),
        "paths": list(dict.fromkeys(paths)),
        "network": [check for check in NETWORK_CHECKS if check in network],
        "time": DependencyKind.TIME in kinds,
        "configuration": DependencyKind.CONFIGURATION in kinds,
    }
    if service.container.environment_file is not None:
        depends["environmentFile"] = service.container.environment_file
    return depends


def build_plan(
    table: ServiceTable, digests: Mapping[str, str], *, rootfs_base: str, arch: str
) -> dict[str, Any]:
    """The plan for every service in ``table``; ``digests``: name -> config.json digest."""
    services = {
        service_id: _service_entry(table, service_id, service, digests, rootfs_base)
        for service_id, service in table.services.items()
    }
    return {
        "apiVersion": PLAN_API_VERSION,
        "kind": "Plan",
        "compiler": {"name": "extsvc", "version": __version__},
        "arch": arch,
        "rootfsBase": rootfs_base.rstrip("/") or "/",
        "levels": [list(level) for level in table.levels],
        "services": services,
    }


def _service_entry(
    table: ServiceTable,
    service_id: str,
    service: Service,
    digests: Mapping[str, str],
    rootfs_base: str,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": service.name,
        "source": source_basename(service.file),
        "bundle": bundle_dir(service.name),
        "digest": digests[service.name],
        "rootfs": rootfs_path(rootfs_base, service.name),
        "restart": service.restart.value,
        "logToConsole": service.log_to_console,
        "level": table.level_of(service_id),
        "depends": _depends(service),
        "mountSources": _mount_sources(service),
    }
    # Only the x-extsvc block adds a policy: without it the entry is Talos's, byte for byte.
    policy = policy_to_plan(service.extsvc.policy) if service.extsvc is not None else {}
    if policy:
        entry["policy"] = policy
    return entry
