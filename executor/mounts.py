"""mount(2)/umount2(2) for the ephemeral rootfs, and the mount table, without spawning mount(8)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from functools import cache
from pathlib import Path

MNT_DETACH = 2


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount(source: str, target: Path, fstype: str, options: str, flags: int = 0) -> None:
    result = _libc().mount(
        source.encode(), str(target).encode(), fstype.encode(), flags, options.encode()
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {fstype} on {target}: {os.strerror(code)}")


def unmount(target: Path) -> None:
    """Unmount ``target``; a busy mount is detached lazily rather than left behind."""
    for flags in (0, MNT_DETACH):
        if _libc().umount2(str(target).encode(), flags) == 0:
            return
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
            return
        if code != errno.EBUSY:
            raise OSError(code, f"umount {target}: {os.strerror(code)}")
    raise OSError(errno.EBUSY, f"umount {target}: busy")


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    out, index = [], 0
    while index < len(field):
        octal = field[index + 1 : index + 4]
        if field[index] == "\\" and len(octal) == 3 and octal.isdigit():
            out.append(chr(int(octal, 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def mount_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[Path]:
    """Every mount point, in mount order."""
    points = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest (last mounted) first: unmount order."""
    prefix = os.path.realpath(directory)
    found = [
        point
        for point in mount_points()
        if str(point) == prefix or str(point).startswith(prefix.rstrip("/") + "/")
    ]
    return list(reversed(found))


def overlay_supported(filesystems: Path = Path("/proc/filesystems")) -> bool:
    try:
        return any(line.split()[-1] == "overlay" for line in filesystems.read_text().splitlines())
    except OSError:
        return False
