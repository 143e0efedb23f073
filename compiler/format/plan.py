"""plan.json, the compiler's output and the executor's input: its constants, types and loader.

The compiler builds the plan dict (``extsvc.compiler.plan_builder``) with the names
defined here; the executor only *reads* it, through ``load_plan``. What a service
entry says about how the service is run (restart, x-extsvc policy, mount sources)
is typed and converted in ``compiler.format.servicepolicy``. A plan is
refused as a whole when it fails its JSON Schema, names a bundle that is missing,
or a bundle's config.json no longer has the digest the plan recorded: running a
spec nobody compiled is worse than running nothing. The bundle bytes are read
once here, so a bundle changed under a running executor cannot change what runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.compiler.format.schemas import validator
from extsvc.compiler.format.serviceids import service_id
from extsvc.compiler.format.servicepolicy import (
    MountSource,
    RestartPolicy,
    ServicePolicy,
    mount_source_from_plan,
    policy_from_plan,
)

PLAN_FILE = "plan.json"
PLAN_API_VERSION = "extsvc/v1"
BUNDLES_DIR = "bundles"
CONFIG_FILE = "config.json"
# Beside config.json: where each of its fields came from (`extsvc explain`); the
# executor never reads it.
ORIGINS_FILE = "origins.json"
# Talos constants.CgroupExtensions: each service's cgroup is <parent>/<name>.
CGROUP_PARENT = "/system/extensions"
# os.uname().machine (the platform module costs ~3 ms of import) -> the plan's arch
# names (Go's GOARCH, as Talos uses).
MACHINE_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# Network checks in a fixed order, whatever order the YAML lists them in.
NETWORK_CHECKS = ("addresses", "connectivity", "hostname", "etcfiles")


# A missing mount source is created (0700, as Talos's MkdirAll) only below one of
# these: the places of a Talos node a service may write to. Anything else (/dev,
# /etc/hosts, /sys/fs/cgroup) must exist already. docs/executor.md states the rule;
# the compiler keeps other sources out of plan mountSources, and the executor
# checks each entry again before it creates it.
MOUNT_SOURCE_ROOTS = ("/var", "/run")


def creatable_mount_source(path: str) -> bool:
    """True for an absolute path strictly below a MOUNT_SOURCE_ROOTS entry, with no
    ".", ".." or empty component and no control character."""
    if not path.startswith("/") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return False
    parts = path.rstrip("/").split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        return False
    return len(parts) >= 2 and "/" + parts[0] in MOUNT_SOURCE_ROOTS


class PlanError(Exception):
    """plan.json is missing, malformed, fails its schema, or its bundles changed."""


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>``: how the plan pins a config.json, and origins.json and
    ``compile --annotate`` name the bytes they describe."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def source_basename(file: str) -> str:
    """How the plan, origins.json and ``--annotate`` name a source file: its base name
    (``/`` or ``\\`` separated), so OUT is the same bytes wherever it is compiled from."""
    return file.replace("\\", "/").rsplit("/", 1)[-1]


def cgroups_path(name: str) -> str:
    return f"{CGROUP_PARENT}/{name}"


def bundle_dir(name: str) -> str:
    """A service's bundle directory, relative to the plan."""
    return f"{BUNDLES_DIR}/{name}"


def host_arch(machine: str | None = None) -> str | None:
    """This host's plan arch (amd64, arm64), or None for another machine."""
    return MACHINE_ARCH.get((machine or os.uname().machine).lower())


@dataclass(frozen=True)
class Dependencies:
    services: tuple[str, ...] = ()
    host_services: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    time: bool = False
    configuration: bool = False
    environment_file: str | None = None


@dataclass(frozen=True)
class ServicePlan:
    id: str
    name: str
    source: str
    bundle_dir: Path
    digest: str
    rootfs: str
    restart: RestartPolicy
    log_to_console: bool
    level: int
    depends: Dependencies
    mount_sources: tuple[MountSource, ...]
    # The compiled config.json, parsed; never modified (adaptation works on a copy).
    spec: dict[str, Any] = field(compare=False, hash=False, repr=False)
    policy: ServicePolicy = field(default_factory=ServicePolicy)


@dataclass(frozen=True)
class Plan:
    path: Path
    compiler_version: str
    arch: str
    rootfs_base: str
    levels: tuple[tuple[str, ...], ...]
    services: dict[str, ServicePlan] = field(hash=False)

    def dependents_of(self, service_id: str) -> list[str]:
        """Services of this plan that wait for ``service_id``."""
        return [s.id for s in self.services.values() if service_id in s.depends.services]


def load_plan(location: Path, machine: str | None = None) -> Plan:
    """Read OUT/plan.json (``location`` is OUT or the plan file itself) and its bundles."""
    plan_path = location / PLAN_FILE if location.is_dir() else location
    data = _read_bytes(plan_path, what="plan")
    raw = parse_json(data, plan_path, what="plan")
    check_plan_schema(raw, data, plan_path)
    arch = host_arch(machine)
    if arch is not None and raw["arch"] != arch:
        raise PlanError(
            f"{plan_path}: plan was compiled for {raw['arch']}, this host is {arch} "
            f"(recompile with the matching --arch)"
        )
    services = {
        service_id: _load_service(plan_path, service_id, entry)
        for service_id, entry in sorted(raw["services"].items())
    }
    levels = tuple(tuple(level) for level in raw["levels"])
    _check_consistency(plan_path, services, levels)
    return Plan(
        path=plan_path,
        compiler_version=raw["compiler"]["version"],
        arch=raw["arch"],
        rootfs_base=raw["rootfsBase"],
        levels=levels,
        services=services,
    )


def _load_service(plan_path: Path, service_id: str, entry: dict[str, Any]) -> ServicePlan:
    bundle_dir = plan_path.parent / entry["bundle"]
    config_path = bundle_dir / CONFIG_FILE
    try:
        config_bytes = config_path.read_bytes()
    except OSError as error:
        raise PlanError(
            f"{plan_path}: {service_id}: cannot read {config_path}: {error.strerror}"
        ) from error
    actual = sha256_digest(config_bytes)
    if actual != entry["digest"]:
        raise PlanError(
            f"{config_path}: digest {actual} differs from the plan's {entry['digest']}: "
            "the bundle changed after compilation (recompile with `extsvc compile`)"
        )
    spec = parse_json(config_bytes, config_path, what="bundle config")
    depends = entry["depends"]
    return ServicePlan(
        id=service_id,
        name=entry["name"],
        source=entry["source"],
        bundle_dir=bundle_dir,
        digest=entry["digest"],
        rootfs=entry["rootfs"],
        restart=RestartPolicy(entry["restart"]),
        log_to_console=entry["logToConsole"],
        level=entry["level"],
        depends=Dependencies(
            services=tuple(depends["services"]),
            host_services=tuple(depends["hostServices"]),
            paths=tuple(depends["paths"]),
            network=tuple(depends["network"]),
            time=depends["time"],
            configuration=depends["configuration"],
            environment_file=depends.get("environmentFile"),
        ),
        mount_sources=tuple(mount_source_from_plan(item) for item in entry["mountSources"]),
        spec=spec,
        policy=policy_from_plan(entry.get("policy", {})),
    )


def _check_consistency(
    plan_path: Path, services: dict[str, ServicePlan], levels: tuple[tuple[str, ...], ...]
) -> None:
    """What the schema cannot say: ids match names, dependencies exist, levels cover all."""
    problems: list[str] = []
    for service in services.values():
        if service.id != service_id(service.name):
            problems.append(f"{service.id}: name {service.name!r} does not match the id")
        for dependency in service.depends.services:
            if dependency not in services:
                problems.append(f"{service.id}: depends on {dependency}, which is not in the plan")
    listed = [service_id for level in levels for service_id in level]
    if sorted(listed) != sorted(services):
        problems.append("levels do not list every service exactly once")
    if problems:
        raise PlanError(f"{plan_path}: inconsistent plan: " + "; ".join(problems))


def check_plan_schema(raw: Any, data: bytes, plan_path: str | Path) -> None:
    """Raise PlanError when ``raw`` (``data`` parsed) breaks the plan schema, with every
    problem as a diagnostic (``file:line:col``, caret), the same rendering as every
    other input.

    JSON is YAML 1.2, so the loader finds where each field is; it runs only here,
    on the error path, never on a good plan.
    """
    errors = sorted(validator("plan").iter_errors(raw), key=lambda e: [str(p) for p in e.path])
    if not errors:
        return
    # The YAML loader costs ~30 ms to import: only a broken plan pays for it.
    from extsvc.compiler.format.load import iter_documents
    from extsvc.compiler.format.schemadiag import reword
    from extsvc.compiler.format.sourcemap import format_path

    documents = list(iter_documents(str(plan_path), data))
    document = documents[0][0] if documents else None
    lines = [f"{plan_path}: does not match the plan schema (extsvc schema --kind plan):"]
    for error in errors:
        if document is None:
            where = format_path(tuple(error.path)) or "(top level)"
            lines.append(f"{plan_path}: {where}: {error.message}")
        else:
            lines.append(reword("plan", error, raw, document.source_map).render())
    raise PlanError("\n".join(lines))


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        hint = " (run `extsvc compile SRC -o OUT` first)" if what == "plan" else ""
        raise PlanError(f"{path}: no such file{hint}") from None
    except OSError as error:
        # Chained: a command may say a permission denied in its own words.
        raise PlanError(f"{path}: cannot read the {what}: {error.strerror}") from error
    return data


def parse_json(data: bytes, path: str | Path, what: str) -> Any:
    """``data`` as JSON, or PlanError naming ``path``, the line and the column."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        where = f"{error.lineno}:{error.colno}: " if isinstance(error, json.JSONDecodeError) else ""
        raise PlanError(f"{path}:{where}invalid {what} JSON: {error}") from None
