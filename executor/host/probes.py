"""Read-only looks at the host for the network and time conditions (DESIGN §6).

Each function answers one question from what the kernel already publishes;
none of them waits. psutil supplies the interface addresses and link states.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
from pathlib import Path

# adjtimex(2) returns the clock state; TIME_ERROR means "not synchronised".
TIME_ERROR = 5
# struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is harmless
# (modes = 0 at offset 0 makes the call read-only).
_TIMEX_BUFFER_SIZE = 512


def has_global_address() -> bool:
    """An address that is not loopback/link-local on an up, non-loopback link."""
    import psutil  # ~10 ms of import: only services that wait for the network pay it

    stats = psutil.net_if_stats()
    for interface, addresses in psutil.net_if_addrs().items():
        link = stats.get(interface)
        if link is None or not link.isup:
            continue
        for address in addresses:
            if address.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(address.address.split("%", 1)[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified):
                return True
    return False


def has_default_route(proc: Path = Path("/proc/net")) -> bool:
    """A default route (IPv4 0.0.0.0/0 up, or IPv6 ::/0 not via lo)."""
    try:
        for line in (proc / "route").read_text().splitlines()[1:]:
            fields = line.split()
            # Destination 00000000 with mask 00000000 and RTF_UP (0x1).
            is_default = len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000"
            if is_default and int(fields[3], 16) & 0x1:
                return True
    except OSError:
        pass
    try:
        for line in (proc / "ipv6_route").read_text().splitlines():
            fields = line.split()
            is_default = len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00"
            if is_default and fields[9] != "lo" and int(fields[8], 16) & 0x1:
                return True
    except OSError:
        pass
    return False


def hostname_is_set() -> bool:
    return socket.gethostname() not in ("", "localhost", "(none)")


def etc_files_exist(etc: Path = Path("/etc")) -> bool:
    return (etc / "hosts").exists() and (etc / "resolv.conf").exists()


def clock_synchronised() -> bool:
    """The kernel says the clock is synchronised (what Talos's time sync reports)."""
    # The libc already loaded: ctypes.util.find_library would spawn ldconfig.
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(_TIMEX_BUFFER_SIZE)
    state = libc.adjtimex(buffer)
    return bool(state >= 0 and state != TIME_ERROR)


NETWORK_CHECKS = {
    "addresses": has_global_address,
    "connectivity": has_default_route,
    "hostname": hostname_is_set,
    "etcfiles": etc_files_exist,
}
