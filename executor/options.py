"""What `extsvc run` was asked to do: the daemon's options, importable without asyncio."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from extsvc.executor.locations import DEFAULT_LOG_DIR, DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from extsvc.compiler.format.plan import Plan
    from extsvc.compiler.format.servicepolicy import ServicePolicy

# Each runc call (create/start/delete/list) is killed after this by default.
RUNC_COMMAND_TIMEOUT = 30.0
# Talos's timing: 5 s between two runs of a restarting service, 10 s from SIGTERM to
# SIGKILL, host conditions re-checked once a second. `run`'s options and the simulation
# default to these.
DEFAULT_RESTART_INTERVAL = 5.0
DEFAULT_STOP_TIMEOUT = 10.0
DEFAULT_CHECK_INTERVAL = 1.0
# Output draining and our own bookkeeping on top of the grace period and runtime calls.
SHUTDOWN_MARGIN = 5.0


class ConsoleKind(Enum):
    """Where logToConsole services' lines are mirrored (Talos: the kernel log)."""

    STDOUT = "stdout"
    KMSG = "kmsg"
    NONE = "none"


# Bounds of `run --log-max-size` and `--log-max-files`: a file smaller than a few long
# lines would rotate at nearly every line; beyond these a typo fills a disk.
LOG_MAX_SIZE_RANGE = (4 * 1024, 1024**3)
LOG_MAX_FILES_RANGE = (1, 100)


@dataclass(frozen=True)
class LogRotation:
    """When a service's log file rotates and how many of its files are kept (the file
    written and ``files - 1`` rotated copies, docker's ``max-file``): a service never
    holds more than ``files * max_bytes`` on disk."""

    max_bytes: int = 1024 * 1024
    files: int = 3

    @property
    def backups(self) -> int:
        return self.files - 1


DEFAULT_LOG_ROTATION = LogRotation()


class LogTarget(Enum):
    """Where each service's lines are stored: the log files, journald, or both.
    ``auto``: both when a systemd unit runs the executor and journald listens, else files."""

    AUTO = "auto"
    FILES = "files"
    JOURNALD = "journald"
    BOTH = "both"


@dataclass(frozen=True)
class DaemonOptions:
    plan: Path
    state_dir: Path = DEFAULT_STATE_DIR
    log_dir: Path = DEFAULT_LOG_DIR
    runtime: str = "runc"
    host_services: Path | None = None
    config_dir: Path | None = None
    console: ConsoleKind = ConsoleKind.STDOUT
    restart_interval: float = DEFAULT_RESTART_INTERVAL
    restart_backoff_max: float | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    check_interval: float = DEFAULT_CHECK_INTERVAL
    overlay: bool = True
    runtime_timeout: float = RUNC_COMMAND_TIMEOUT
    log_rotation: LogRotation = DEFAULT_LOG_ROTATION
    metrics_file: Path | None = None
    metrics_listen: tuple[str, int] | None = None
    # executor.runtime.placement: auto, none or an absolute cgroup path.
    cgroup_parent: str = "auto"
    log_target: LogTarget = LogTarget.AUTO
    journal_socket: Path = Path("/run/systemd/journal/socket")

    def __post_init__(self) -> None:
        # runc resolves a bundle's relative root.path against the bundle directory:
        # a relative --state-dir would point every container at a rootfs that is not there.
        object.__setattr__(self, "state_dir", self.state_dir.absolute())

    def shutdown_bound(self, plan: Plan) -> float:
        """How long stopping every service of ``plan`` may take.

        Each dependency level stops only after the levels that depend on it, so the
        longest grace of each level counts, one level after the other (a bound on any
        chain of dependencies). Then at most a runtime call or two (each killed at
        ``runtime_timeout``) and our own bookkeeping; past this bound a hung runtime is
        left behind. `extsvc systemd-unit` derives TimeoutStopSec from it.
        """
        graces = sum(
            max((grace(plan.services[i].policy, self.stop_timeout) for i in level), default=0.0)
            for level in plan.levels
        )
        return graces + 2 * self.runtime_timeout + SHUTDOWN_MARGIN


def grace(policy: ServicePolicy, default: float) -> float:
    """SIGTERM -> SIGKILL grace: the service's own (x-extsvc stopTimeout) or the executor's."""
    return policy.stop_timeout if policy.stop_timeout is not None else default
