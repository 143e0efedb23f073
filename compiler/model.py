"""Model: the typed, frozen form of one extension-service file.

``service_from_tree`` runs only on trees that passed the input schema, so it
can trust types; semantic rules live in ``compiler.rules``. Absent and empty
are different things in this format (``maskedPaths`` absent means containerd's
defaults, ``[]`` means none), so optional lists stay ``None`` when absent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from extsvc.compiler.format.serviceids import service_id
from extsvc.compiler.format.servicepolicy import RestartPolicy
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap
from extsvc.compiler.policy import Block, block_from_tree


class DependencyKind(enum.Enum):
    SERVICE = "service"
    PATH = "path"
    NETWORK = "network"
    TIME = "time"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class Mount:
    """An OCI mount exactly as written: absent keys stay absent."""

    destination: str
    source: str | None
    type: str | None
    options: tuple[str, ...] | None
    field_path: FieldPath


@dataclass(frozen=True)
class Security:
    masked_paths: tuple[str, ...] | None
    readonly_paths: tuple[str, ...] | None
    writeable_rootfs: bool
    writeable_sysfs: bool
    rootfs_propagation: str | None


@dataclass(frozen=True)
class Container:
    entrypoint: str
    args: tuple[str, ...]
    environment: tuple[str, ...]
    environment_file: str | None
    mounts: tuple[Mount, ...]
    security: Security


@dataclass(frozen=True)
class Dependency:
    kind: DependencyKind
    # service ID for SERVICE, path for PATH, checks for NETWORK, empty otherwise.
    value: str | tuple[str, ...] | None
    field_path: FieldPath


@dataclass(frozen=True)
class Service:
    name: str
    container: Container
    depends: tuple[Dependency, ...]
    restart: RestartPolicy
    log_to_console: bool
    source_map: SourceMap
    # The x-extsvc block; None when the file has none (then every output is Talos's).
    extsvc: Block | None = None

    @property
    def id(self) -> str:
        return service_id(self.name)

    @property
    def file(self) -> str:
        return self.source_map.file


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


def _optional_strings(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _mount(tree: dict[str, Any], path: FieldPath) -> Mount:
    return Mount(
        destination=tree["destination"],
        source=tree.get("source"),
        type=tree.get("type"),
        options=_optional_strings(tree.get("options")),
        field_path=path,
    )


def _security(tree: dict[str, Any]) -> Security:
    return Security(
        masked_paths=_optional_strings(tree.get("maskedPaths")),
        readonly_paths=_optional_strings(tree.get("readonlyPaths")),
        writeable_rootfs=bool(tree.get("writeableRootfs", False)),
        writeable_sysfs=bool(tree.get("writeableSysfs", False)),
        rootfs_propagation=tree.get("rootfsPropagation"),
    )


def _dependency(tree: dict[str, Any], path: FieldPath) -> Dependency:
    ((key, value),) = tree.items()  # the schema guarantees exactly one field
    kind = DependencyKind(key)
    if kind is DependencyKind.NETWORK:
        value = tuple(value)
    elif kind in (DependencyKind.TIME, DependencyKind.CONFIGURATION):
        value = None
    return Dependency(kind=kind, value=value, field_path=(*path, key))


def service_from_tree(tree: dict[str, Any], source_map: SourceMap) -> Service:
    container = tree["container"]
    return Service(
        name=tree["name"],
        container=Container(
            entrypoint=container["entrypoint"],
            args=_strings(container.get("args")),
            environment=_strings(container.get("environment")),
            environment_file=container.get("environmentFile"),
            mounts=tuple(
                _mount(mount, ("container", "mounts", index))
                for index, mount in enumerate(container.get("mounts") or ())
            ),
            security=_security(container.get("security") or {}),
        ),
        depends=tuple(
            _dependency(dependency, ("depends", index))
            for index, dependency in enumerate(tree.get("depends") or ())
        ),
        restart=RestartPolicy(tree["restart"]),
        log_to_console=bool(tree.get("logToConsole", False)),
        source_map=source_map,
        extsvc=block_from_tree(tree),
    )
