"""How one service is run: its restart policy, x-extsvc's run-time policy and its mount sources.

The compiler fills these types in (``compiler.model`` from Talos's ``restart``,
``compiler.policy`` from the x-extsvc block) and the executor acts on them
(``executor.service``); between the two they travel in plan.json's service entries
(``compiler.format.plan``). ``policy_to_plan`` and ``mount_source_to_plan`` write an
entry's ``policy`` object and ``mountSources`` items (``compiler.plan_builder``);
``policy_from_plan`` and ``mount_source_from_plan`` read them back, each the inverse
of the other, from input the plan schema has already checked.

The defaults are Talos's behaviour and are never written: without an x-extsvc block
a service's ``policy`` is empty and its ``mountSources`` are bare paths, so its plan
entry is Talos's, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class RestartPolicy(Enum):
    """Talos's ``restart``; what each one decides is executor.service.restart's."""

    ALWAYS = "always"
    NEVER = "never"
    UNTIL_SUCCESS = "untilSuccess"


class OnUnhealthy(Enum):
    """What the executor does once a health check has failed ``retries`` times in a row."""

    NONE = "none"
    RESTART = "restart"


@dataclass(frozen=True)
class HealthCheck:
    """x-extsvc health: a command run in the container (``runc exec``); exit 0 = healthy."""

    exec: tuple[str, ...]
    interval: float  # seconds between the start of one check and the next
    timeout: float  # a check still running after this counts as failed
    retries: int  # consecutive failures before the service is unhealthy
    start_period: float  # failures this soon after start do not count
    on_unhealthy: OnUnhealthy
    # The check's own user (uid, gid) and capabilities; None: the service's.
    user: tuple[int, int] | None = None
    capabilities: tuple[str, ...] | None = None


# Talos's MkdirAll mode for a missing mount source, and its owner (the executor's).
MOUNT_SOURCE_MODE = 0o700


@dataclass(frozen=True)
class MountSource:
    """A mount source the executor creates when missing (x-extsvc ``mountSources``
    may say its owner and mode; the defaults are Talos's)."""

    path: str
    uid: int = 0
    gid: int = 0
    mode: int = MOUNT_SOURCE_MODE

    @property
    def owned(self) -> bool:
        """True when x-extsvc said something other than Talos's root:root 0700."""
        return (self.uid, self.gid, self.mode) != (0, 0, MOUNT_SOURCE_MODE)


@dataclass(frozen=True)
class RestartLimit:
    """More than ``count`` failed runs within ``window`` seconds: Failed for good."""

    count: int
    window: float


@dataclass(frozen=True)
class ServicePolicy:
    """The x-extsvc run-time policy of one service; the defaults are Talos's behaviour."""

    health: HealthCheck | None = None
    start_timeout: float | None = None  # seconds still Waiting before Failed
    optional: bool = False  # dependents of a failed optional service are Skipped
    stop_timeout: float | None = None  # SIGTERM -> SIGKILL grace; None: the executor's
    restart_limit: RestartLimit | None = None


def policy_from_plan(raw: dict[str, Any]) -> ServicePolicy:
    """The typed policy of a plan entry's ``policy`` object (already schema-checked)."""
    health = raw.get("health")
    limit = raw.get("restartLimit")
    return ServicePolicy(
        health=None
        if health is None
        else HealthCheck(
            exec=tuple(health["exec"]),
            interval=health["interval"],
            timeout=health["timeout"],
            retries=health["retries"],
            start_period=health["startPeriod"],
            on_unhealthy=OnUnhealthy(health["onUnhealthy"]),
            user=None if "user" not in health else (health["user"]["uid"], health["user"]["gid"]),
            capabilities=None if "capabilities" not in health else tuple(health["capabilities"]),
        ),
        start_timeout=raw.get("startTimeout"),
        optional=raw.get("optional", False),
        stop_timeout=raw.get("stopTimeout"),
        restart_limit=None if limit is None else RestartLimit(limit["count"], limit["window"]),
    )


def policy_to_plan(policy: ServicePolicy) -> dict[str, Any]:
    """The plan's ``policy`` object: only what differs from the defaults (Talos's behaviour)."""
    raw: dict[str, Any] = {}
    if policy.health is not None:
        health = policy.health
        raw["health"] = {
            "exec": list(health.exec),
            "interval": health.interval,
            "timeout": health.timeout,
            "retries": health.retries,
            "startPeriod": health.start_period,
            "onUnhealthy": health.on_unhealthy.value,
        }
        if health.user is not None:
            raw["health"]["user"] = {"uid": health.user[0], "gid": health.user[1]}
        if health.capabilities is not None:
            raw["health"]["capabilities"] = list(health.capabilities)
    if policy.start_timeout is not None:
        raw["startTimeout"] = policy.start_timeout
    if policy.optional:
        raw["optional"] = True
    if policy.stop_timeout is not None:
        raw["stopTimeout"] = policy.stop_timeout
    if policy.restart_limit is not None:
        raw["restartLimit"] = {
            "count": policy.restart_limit.count,
            "window": policy.restart_limit.window,
        }
    return raw


def mount_source_from_plan(item: str | dict[str, Any]) -> MountSource:
    """A plan's ``mountSources`` item: a path (Talos's root:root 0700), or an object
    with the owner and mode x-extsvc gave (the mode as octal digits)."""
    if isinstance(item, str):
        return MountSource(item)
    return MountSource(item["path"], item["uid"], item["gid"], int(item["mode"], 8))


def mount_source_to_plan(source: MountSource) -> str | dict[str, Any]:
    """A path alone unless x-extsvc changed owner or mode: without the block the plan
    is Talos's, byte for byte."""
    if not source.owned:
        return source.path
    return {"path": source.path, "uid": source.uid, "gid": source.gid, "mode": f"{source.mode:04o}"}
