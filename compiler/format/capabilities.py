"""Linux capabilities: the one table of names by number, and what Talos grants.

The compiler writes GRANTED_CAPABILITIES into every spec; the executor decodes
its own bounding set (``/proc/self/status`` CapBnd) with the same table.
"""

from __future__ import annotations

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


def names_from_mask(mask: int) -> frozenset[str]:
    """Capability names whose bit is set in a CapBnd/CapEff style mask.

    Bits above the table (a newer kernel's capabilities) are ignored: the
    compiled spec never asks for a capability this table does not name.
    """
    return frozenset(name for bit, name in enumerate(LINUX_CAPABILITIES) if mask >> bit & 1)
