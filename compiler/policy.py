"""The ``x-extsvc:`` block: extsvc's own policy in a service file, which Talos ignores.

Talos decodes service files without rejecting unknown keys, so a file carrying
this block still runs unchanged on Talos; extsvc honours it. The input schema
checks its shape (strictly: a typo inside the block is an error with "did you
mean"); ``check_block`` checks the values the schema cannot (durations, sizes,
capability names), each at its own line and column; ``block_from_tree`` types
a block that passed both.

Where each part goes: resources and capabilities are enforced by runc through
config.json (``compiler.oci``); health, timeouts, ``optional`` and the restart
limit are executor policy and go to plan.json (``ServicePolicy``); the owner and
mode of created mount sources go to the plan's ``mountSources``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from extsvc.compiler.format.capabilities import ALL_CAPABILITIES, NOT_GRANTED
from extsvc.compiler.format.diagnostics import Diagnostic, Severity, did_you_mean, short_repr
from extsvc.compiler.format.plan import creatable_mount_source
from extsvc.compiler.format.quantities import parse_duration, parse_size
from extsvc.compiler.format.ranges import MAX_CPUS
from extsvc.compiler.format.servicepolicy import (
    MOUNT_SOURCE_MODE,
    HealthCheck,
    MountSource,
    OnUnhealthy,
    RestartLimit,
    ServicePolicy,
)
from extsvc.compiler.format.sourcemap import FieldPath, SourceMap, value_at

BLOCK = "x-extsvc"
# Docker's HEALTHCHECK defaults: what users of a health check already know.
HEALTH_INTERVAL = "30s"
HEALTH_TIMEOUT = "30s"
HEALTH_RETRIES = 3
HEALTH_START_PERIOD = "0s"
# The CFS period runc writes with a quota (Docker's --cpus uses the same).
CPU_PERIOD_US = 100_000
# The kernel refuses a CFS quota below 1 ms.
MIN_CPU_QUOTA_US = 1_000
# Durations of the block, and whether zero makes sense for them.
_DURATIONS: tuple[tuple[FieldPath, bool], ...] = (
    (("health", "interval"), False),
    (("health", "timeout"), False),
    (("health", "startPeriod"), True),
    (("startTimeout",), False),
    (("stopTimeout",), True),
    (("restartLimit", "window"), False),
)


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes: linux.resources.memory.limit
    cpu_quota: int | None = None  # microseconds per CPU_PERIOD_US
    pids: int | None = None


@dataclass(frozen=True)
class Block:
    """A checked x-extsvc block; ``None`` fields were not given (Talos's behaviour)."""

    policy: ServicePolicy
    resources: Resources
    capabilities: tuple[str, ...] | None  # sorted, without duplicates
    # Owner and mode of created mount sources, by path (mountSources).
    mount_sources: dict[str, MountSource] = field(default_factory=dict)


def cpu_quota(cpus: float) -> int:
    return round(cpus * CPU_PERIOD_US)


def check_block(tree: Any, source_map: SourceMap) -> Iterator[Diagnostic]:
    """Every value problem of the block, each at its place; types are the schema's job."""
    block = value_at(tree, (BLOCK,))
    if not isinstance(block, dict):
        return

    def at(path: FieldPath, message: str, **extra: Any) -> Diagnostic:
        return source_map.diagnostic((BLOCK, *path), message, **extra)

    for path, zero_ok in _DURATIONS:
        duration = value_at(block, path)
        if isinstance(duration, str):
            yield from _check_value(duration, path, parse_duration, zero_ok, at)
    memory = value_at(block, ("resources", "memory"))
    # A number of bytes is the schema's to range-check; a size with a unit is parsed here.
    if isinstance(memory, str):
        yield from _check_value(memory, ("resources", "memory"), parse_size, False, at)
    yield from _check_cpus(value_at(block, ("resources", "cpus")), at)
    command = value_at(block, ("health", "exec"))
    if isinstance(command, list) and command and command[0] == "":
        yield at(("health", "exec", 0), "the health-check command is empty")
    yield from _check_capabilities(value_at(block, ("capabilities",)), ("capabilities",), at)
    yield from _check_capabilities(
        value_at(block, ("health", "capabilities")), ("health", "capabilities"), at
    )
    yield from _check_mount_sources(tree, value_at(block, ("mountSources",)), at)
    if tree.get("restart") == "never" and isinstance(block.get("restartLimit"), dict):
        yield at(
            ("restartLimit",),
            "restartLimit has no effect with 'restart: never' (the service runs once)",
            severity=Severity.WARNING,
            at_key=True,
        )


def _check_value(
    value: Any,
    path: FieldPath,
    parse: Callable[[Any], float],
    zero_ok: bool,
    at: Callable[..., Diagnostic],
) -> Iterator[Diagnostic]:
    try:
        parsed = parse(value)
    except ValueError as error:
        yield at(path, str(error))
        return
    if parsed == 0 and not zero_ok:
        yield at(path, f"{short_repr(value)} is zero; it must be more than that")


def _check_cpus(cpus: Any, at: Callable[..., Diagnostic]) -> Iterator[Diagnostic]:
    """What the schema cannot see: NaN (inside every range, for a comparison) and a
    quota below the kernel's smallest. Above MAX_CPUS (inf too) is the schema's error."""
    if not isinstance(cpus, int | float) or isinstance(cpus, bool):
        return
    path = ("resources", "cpus")
    if isinstance(cpus, float) and math.isnan(cpus):  # an int can be too large for isnan
        yield at(path, f"must be greater than 0 and at most {MAX_CPUS}, not NaN")
    elif 0 < cpus <= MAX_CPUS and cpu_quota(cpus) < MIN_CPU_QUOTA_US:
        yield at(path, f"cpus {cpus} is below the kernel's smallest CPU quota (0.01)")


def _check_capabilities(
    names: Any, where: FieldPath, at: Callable[..., Diagnostic]
) -> Iterator[Diagnostic]:
    if not isinstance(names, list):
        return
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        path = (*where, index)
        if name not in ALL_CAPABILITIES:
            candidate = name if name.upper().startswith("CAP_") else "CAP_" + name
            yield at(
                path,
                f"unknown capability {name!r}",
                hint=did_you_mean(candidate, sorted(ALL_CAPABILITIES))
                or "names are the kernel's, e.g. CAP_NET_ADMIN (see capabilities(7))",
            )
        elif name in NOT_GRANTED:
            yield at(
                path,
                f"Talos never grants {name} to an extension service; "
                "x-extsvc capabilities can only take capabilities away",
            )
        elif name in seen:
            yield at(path, f"{name} is listed twice", severity=Severity.WARNING)
        seen.add(name)


def _check_mount_sources(
    tree: dict[str, Any], items: Any, at: Callable[..., Diagnostic]
) -> Iterator[Diagnostic]:
    """Each path must be a source the executor creates for this service: the source
    of one of its own mounts, below /var or /run (docs/executor.md)."""
    if not isinstance(items, list):
        return
    mounts = value_at(tree, ("container", "mounts"))
    sources = (
        {m.get("source") for m in mounts if isinstance(m, dict)}
        if isinstance(mounts, list)
        else set()
    )
    seen: set[str] = set()
    for index, item in enumerate(items):
        path = value_at(item, ("path",))
        if not isinstance(path, str):
            continue
        where = ("mountSources", index, "path")
        if path in seen:
            yield at(where, f"{path} is listed twice")
        elif path not in sources:
            yield at(
                where,
                f"{path} is not the source of one of this service's mounts",
                hint="name a container.mounts source exactly as written there",
            )
        elif not creatable_mount_source(path):
            yield at(
                where,
                f"extsvc never creates {path}: it creates missing mount sources only below "
                "/var or /run, so an owner and mode cannot apply",
            )
        seen.add(path)


def _duration(block: dict[str, Any], path: FieldPath, default: str | None = None) -> float | None:
    value = value_at(block, path)
    if value is None:
        value = default
    return None if value is None else parse_duration(value)


def _health(block: dict[str, Any]) -> HealthCheck | None:
    health = block.get("health")
    if health is None:
        return None
    return HealthCheck(
        exec=tuple(health["exec"]),
        interval=parse_duration(health.get("interval", HEALTH_INTERVAL)),
        timeout=parse_duration(health.get("timeout", HEALTH_TIMEOUT)),
        retries=health.get("retries", HEALTH_RETRIES),
        start_period=parse_duration(health.get("startPeriod", HEALTH_START_PERIOD)),
        on_unhealthy=OnUnhealthy(health.get("onUnhealthy", OnUnhealthy.NONE.value)),
        user=_ids(health.get("user")),
        capabilities=None
        if health.get("capabilities") is None
        else tuple(sorted(set(health["capabilities"]))),
    )


def _ids(ids: dict[str, int] | None) -> tuple[int, int] | None:
    return None if ids is None else (ids["uid"], ids["gid"])


def _mount_source(item: dict[str, Any]) -> MountSource:
    uid, gid = _ids(item.get("owner")) or (0, 0)
    mode = item.get("mode")
    return MountSource(item["path"], uid, gid, MOUNT_SOURCE_MODE if mode is None else int(mode, 8))


def block_from_tree(tree: dict[str, Any]) -> Block | None:
    """The typed block of a service tree that passed the schema and ``check_block``."""
    block = tree.get(BLOCK)
    if block is None:
        return None
    limit = block.get("restartLimit")
    resources = block.get("resources", {})
    memory = resources.get("memory")
    cpus = resources.get("cpus")
    capabilities = block.get("capabilities")
    return Block(
        policy=ServicePolicy(
            health=_health(block),
            start_timeout=_duration(block, ("startTimeout",)),
            optional=bool(block.get("optional", False)),
            stop_timeout=_duration(block, ("stopTimeout",)),
            restart_limit=None
            if limit is None
            else RestartLimit(limit["count"], parse_duration(limit["window"])),
        ),
        resources=Resources(
            memory=None if memory is None else parse_size(memory),
            cpu_quota=None if cpus is None else cpu_quota(cpus),
            pids=resources.get("pids"),
        ),
        capabilities=None if capabilities is None else tuple(sorted(set(capabilities))),
        mount_sources={item["path"]: _mount_source(item) for item in block.get("mountSources", ())},
    )
