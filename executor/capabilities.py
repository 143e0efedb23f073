"""Linux capability numbers, as the kernel reports them in /proc/<pid>/status.

The one table of names by number is the compiler's (``compiler.defaults``); the
executor needs the numbers to decode its own bounding set (CapBnd).
"""

from __future__ import annotations

from compiler.defaults import LINUX_CAPABILITIES as CAPABILITY_NAMES


def names_from_mask(mask: int) -> frozenset[str]:
    """Capability names whose bit is set in a CapBnd/CapEff style mask.

    Bits above the table (a newer kernel's capabilities) are ignored: the
    compiled spec never asks for a capability this table does not name.
    """
    return frozenset(name for bit, name in enumerate(CAPABILITY_NAMES) if mask >> bit & 1)
