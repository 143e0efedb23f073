"""What Talos and containerd put into every extension-service spec (DESIGN §4).

Data only. Each table names its origin, which ``compiler.oci`` records as the
provenance of the output fields built from it.
"""

from __future__ import annotations

from typing import Any

OCI_VERSION = "1.3.0"  # what containerd v2 writes
DEFAULT_ROOTFS_BASE = "/usr/local/lib/containers"
CGROUP_PARENT = "/system/extensions"  # Talos constants.CgroupExtensions
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

# Every Linux capability, index = its number (linux/capability.h), 0 .. 40
# (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE). The executor decodes /proc bitmasks with it.
LINUX_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
ALL_CAPABILITIES: frozenset[str] = frozenset(LINUX_CAPABILITIES)
# Talos capability.AllGrantableCapabilities(): all but these two. A fixed list,
# sorted (Talos's own order is random), never read from the build host.
NOT_GRANTED: frozenset[str] = frozenset({"CAP_SYS_BOOT", "CAP_SYS_MODULE"})
GRANTED_CAPABILITIES: tuple[str, ...] = tuple(sorted(ALL_CAPABILITIES - NOT_GRANTED))
