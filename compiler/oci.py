"""Build: one service model -> the OCI config.json Talos + containerd would run.

Pure: no I/O. Everything it needs (rootfs base, the seccomp profile for the
target architecture) comes in a ``BuildContext``. Alongside the config it
returns the origin of each output field, so a reviewer (and ``explain``) can
tell what came from the YAML and what from Talos's or containerd's defaults.

The order of operations mirrors Talos's ``getOCIOptions`` applied to
containerd's default spec, because order is visible in the output: mounts are
only ever appended, and ``writeableSysfs`` runs after the service's own mounts
are in, so it also flips a sysfs mount the service adds itself.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from extsvc.compiler import defaults
from extsvc.compiler.format.diagnostics import Position
from extsvc.compiler.format.enventries import is_dropped, kept
from extsvc.compiler.format.plan import cgroups_path
from extsvc.compiler.format.sourcemap import FieldPath
from extsvc.compiler.model import Mount, Service
from extsvc.compiler.policy import BLOCK, CPU_PERIOD_US, Resources


@dataclass(frozen=True)
class Origin:
    """Where one output field came from."""

    description: str
    file: str | None = None
    position: Position | None = None

    def __str__(self) -> str:
        if self.file is None or self.position is None:
            return self.description
        return f"{self.description} ({self.file}:{self.position.line}:{self.position.col})"


@dataclass(frozen=True)
class BuildContext:
    rootfs_base: str
    seccomp_profile: Mapping[str, Any]


@dataclass(frozen=True)
class BuiltConfig:
    config: dict[str, Any]
    # Output field path ("process.args", "mounts[9]") -> where it came from.
    origins: dict[str, Origin] = field(default_factory=dict)


class _Origins:
    """Collects origins while the config is built."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self.by_field: dict[str, Origin] = {}

    def from_input(self, output_field: str, input_path: FieldPath, what: str) -> None:
        source_map = self._service.source_map
        self.by_field[output_field] = Origin(
            f"{what} from the service file",
            source_map.file,
            source_map.value_position(input_path),
        )

    def from_default(self, output_field: str, description: str) -> None:
        self.by_field[output_field] = Origin(description)


def rootfs_path(rootfs_base: str, name: str) -> str:
    return rootfs_base.rstrip("/") + "/" + name


def environment(service: Service) -> list[str]:
    """The process environment: verbatim, in order, duplicates kept.

    An entry without '=' is dropped, as containerd's WithEnv does (it reads it
    as "unset"); ``compiler.rules`` warns about it.
    """
    return kept(service.container.environment)


def _mount_dict(mount: Mount) -> dict[str, Any]:
    # containerd marshals specs.Mount with omitempty: absent or empty stays out.
    result: dict[str, Any] = {"destination": mount.destination}
    if mount.type:
        result["type"] = mount.type
    if mount.source:
        result["source"] = mount.source
    if mount.options:
        result["options"] = list(mount.options)
    return result


def _process(service: Service, origins: _Origins) -> dict[str, Any]:
    container = service.container
    process: dict[str, Any] = {
        "args": [container.entrypoint, *container.args],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "noNewPrivileges": True,
        "oomScoreAdj": defaults.OOM_SCORE_ADJ,
        "capabilities": {
            capability_set: list(_capabilities(service))
            for capability_set in ("bounding", "effective", "permitted")
        },
    }
    origins.from_input("process.args", ("container", "entrypoint"), "entrypoint and args")
    env = environment(service)
    if env:  # no "env" key at all when empty: containerd adds no default PATH here
        process["env"] = env
        origins.from_input("process.env", ("container", "environment"), "environment")
        # Each entry too: a configuration document appends more after these.
        kept = (i for i, e in enumerate(service.container.environment) if not is_dropped(e))
        for position, index in enumerate(kept):
            origins.from_input(
                f"process.env[{position}]", ("container", "environment", index), "environment"
            )
    origins.from_default("process.cwd", defaults.ORIGIN_CONTAINERD)
    origins.from_default("process.user", defaults.ORIGIN_CONTAINERD)
    origins.from_default("process.noNewPrivileges", defaults.ORIGIN_CONTAINERD)
    origins.from_default("process.oomScoreAdj", defaults.ORIGIN_TALOS + " (WithOOMScoreAdj)")
    if service.extsvc is not None and service.extsvc.capabilities is not None:
        origins.from_input("process.capabilities", (BLOCK, "capabilities"), "x-extsvc capabilities")
    else:
        origins.from_default(
            "process.capabilities",
            defaults.ORIGIN_TALOS
            + " (all grantable capabilities: all but CAP_SYS_BOOT, CAP_SYS_MODULE)",
        )
    return process


def _capabilities(service: Service) -> tuple[str, ...]:
    """Talos's grantable set, or only what the x-extsvc block lists (least privilege)."""
    if service.extsvc is not None and service.extsvc.capabilities is not None:
        return service.extsvc.capabilities
    return defaults.GRANTED_CAPABILITIES


def _resources(service: Service, origins: _Origins) -> dict[str, Any]:
    """linux.resources: Talos's device rule, plus the x-extsvc limits (runc enforces them)."""
    resources: dict[str, Any] = {"devices": [{"allow": True, "access": "rwm"}]}
    origins.from_default(
        "linux.resources.devices", defaults.ORIGIN_TALOS + " (WithAllDevicesAllowed)"
    )
    limits = service.extsvc.resources if service.extsvc is not None else Resources()
    if limits.memory is not None:
        resources["memory"] = {"limit": limits.memory}
        origins.from_input(
            "linux.resources.memory", (BLOCK, "resources", "memory"), "x-extsvc memory limit"
        )
    if limits.cpu_quota is not None:
        resources["cpu"] = {"quota": limits.cpu_quota, "period": CPU_PERIOD_US}
        origins.from_input("linux.resources.cpu", (BLOCK, "resources", "cpus"), "x-extsvc cpus")
    if limits.pids is not None:
        resources["pids"] = {"limit": limits.pids}
        origins.from_input(
            "linux.resources.pids", (BLOCK, "resources", "pids"), "x-extsvc pids limit"
        )
    return resources


def _root(service: Service, context: BuildContext, origins: _Origins) -> dict[str, Any]:
    root: dict[str, Any] = {"path": rootfs_path(context.rootfs_base, service.name)}
    origins.from_default("root.path", f"<rootfs-base>/<name>, rootfs-base {context.rootfs_base}")
    if service.container.security.writeable_rootfs:
        origins.from_input(
            "root.readonly", ("container", "security", "writeableRootfs"), "writeableRootfs"
        )
    else:
        root["readonly"] = True
        origins.from_default(
            "root.readonly", defaults.ORIGIN_TALOS + " (rootfs read-only by default)"
        )
    return root


def _path_list(
    given: tuple[str, ...] | None, default: tuple[str, ...], key: str, origins: _Origins
) -> list[str]:
    """Masked/readonly paths: absent -> containerd defaults; [] -> none; list -> list."""
    if given is None:
        origins.from_default(f"linux.{key}", defaults.ORIGIN_CONTAINERD)
        return list(default)
    origins.from_input(f"linux.{key}", ("container", "security", key), key)
    return list(given)


def _linux(service: Service, context: BuildContext, origins: _Origins) -> dict[str, Any]:
    security = service.container.security
    linux: dict[str, Any] = {
        "cgroupsPath": cgroups_path(service.name),
        "namespaces": [{"type": namespace} for namespace in defaults.NAMESPACES],
        "resources": _resources(service, origins),
        # Shared, never mutated: every config of one architecture holds the same profile.
        "seccomp": context.seccomp_profile,
    }
    origins.from_default("linux.cgroupsPath", defaults.ORIGIN_TALOS + " (system/extensions cgroup)")
    origins.from_default("linux.namespaces", defaults.ORIGIN_TALOS + " (host network and IPC)")
    origins.from_default(
        "linux.seccomp", "containerd default seccomp profile for the granted capabilities"
    )
    masked = _path_list(
        security.masked_paths, defaults.DEFAULT_MASKED_PATHS, "maskedPaths", origins
    )
    readonly = _path_list(
        security.readonly_paths, defaults.DEFAULT_READONLY_PATHS, "readonlyPaths", origins
    )
    # An empty list is written as no key at all (Go's omitempty), not as [].
    if masked:
        linux["maskedPaths"] = masked
    if readonly:
        linux["readonlyPaths"] = readonly
    if security.rootfs_propagation:
        linux["rootfsPropagation"] = security.rootfs_propagation
        origins.from_input(
            "linux.rootfsPropagation",
            ("container", "security", "rootfsPropagation"),
            "rootfsPropagation",
        )
    return linux


def _mounts(service: Service, origins: _Origins) -> list[dict[str, Any]]:
    """Appended in Talos's order; never deduplicated, sorted or cleaned."""
    mounts = [
        copy.deepcopy(mount) for mount in (*defaults.DEFAULT_MOUNTS, *defaults.HOST_FILE_MOUNTS)
    ]
    for index in range(len(defaults.DEFAULT_MOUNTS)):
        origins.from_default(f"mounts[{index}]", defaults.ORIGIN_CONTAINERD)
    for index in range(len(defaults.DEFAULT_MOUNTS), len(mounts)):
        origins.from_default(f"mounts[{index}]", defaults.ORIGIN_TALOS + " (host resolver files)")
    for mount in service.container.mounts:
        origins.from_input(f"mounts[{len(mounts)}]", mount.field_path, "mount")
        mounts.append(_mount_dict(mount))
    if service.container.security.writeable_sysfs:
        _make_sysfs_writeable(mounts, service, origins)
    return mounts


def _make_sysfs_writeable(
    mounts: list[dict[str, Any]], service: Service, origins: _Origins
) -> None:
    # containerd's WithWriteableSysfs: every mount of *type* sysfs, ro -> rw.
    for index, mount in enumerate(mounts):
        if mount.get("type") == "sysfs" and "options" in mount:
            mount["options"] = ["rw" if option == "ro" else option for option in mount["options"]]
            origins.from_input(
                f"mounts[{index}]", ("container", "security", "writeableSysfs"), "writeableSysfs"
            )


def build_config(service: Service, context: BuildContext) -> BuiltConfig:
    """The complete config.json for ``service`` as a plain dict, with origins."""
    origins = _Origins(service)
    origins.from_default("ociVersion", defaults.ORIGIN_CONTAINERD + " (containerd v2)")
    config = {
        "ociVersion": defaults.OCI_VERSION,
        "process": _process(service, origins),
        "root": _root(service, context, origins),
        "mounts": _mounts(service, origins),
        "linux": _linux(service, context, origins),
    }
    return BuiltConfig(config=config, origins=origins.by_field)
