"""What Talos and containerd put into every extension-service spec.

README.md ("What the output matches") states the facts.

Data only. Each table names its origin, which ``compiler.oci`` records as the
provenance of the output fields built from it.
"""

from __future__ import annotations

from typing import Any

# The capability table is part of the contract: the executor decodes masks with it.
from extsvc.compiler.format.capabilities import GRANTED_CAPABILITIES as GRANTED_CAPABILITIES

OCI_VERSION = "1.3.0"  # what containerd v2 writes
DEFAULT_ROOTFS_BASE = "/usr/local/lib/containers"
OOM_SCORE_ADJ = -600  # Talos runner.WithOOMScoreAdj(-600)

ORIGIN_CONTAINERD = "containerd default spec"
ORIGIN_TALOS = "Talos extension service runner"

# containerd populateDefaultUnixSpec, in its order.
DEFAULT_MOUNTS: tuple[dict[str, Any], ...] = (
    {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        "destination": "/run",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
)

# Talos bind-mounts the host's resolver files read-only into every extension.
HOST_FILE_MOUNTS: tuple[dict[str, Any], ...] = tuple(
    {"destination": path, "type": "bind", "source": path, "options": ["rbind", "ro"]}
    for path in ("/etc/hosts", "/etc/resolv.conf")
)

# containerd defaults, used when the YAML key is absent (not when it is []).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# Talos keeps the host's network and IPC namespaces; no cgroup or user namespace.
NAMESPACES: tuple[str, ...] = ("pid", "uts", "mount")
