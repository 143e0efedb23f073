"""mount(2)/umount2(2) for the ephemeral rootfs, and the mount table, without spawning mount(8)."""

from __future__ import annotations

import ctypes
import errno
import os
import re
from functools import cache
from pathlib import Path

MNT_DETACH = 2


@cache
def _libc() -> ctypes.CDLL:
    # The libc already loaded: ctypes.util.find_library would spawn ldconfig.
    return ctypes.CDLL(None, use_errno=True)


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


_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


def _unescape(field: bytes) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    if b"\\" in field:
        field = _OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(field)


def _escape(path: bytes) -> bytes:
    for character in b"\\ \t\n":
        path = path.replace(bytes([character]), b"\\%03o" % character)
    return path


def mount_points(
    mountinfo: Path = Path("/proc/self/mountinfo"), under: str | None = None
) -> list[Path]:
    """Every mount point (or those at or below ``under``), in mount order.

    One read and a split per line; only the mount point field is decoded, and
    only for the lines that can match ``under`` (thousands of mounts are common).
    """
    prefix = _escape(os.fsencode(under.rstrip("/"))) if under is not None else None
    points = []
    for line in mountinfo.read_bytes().split(b"\n"):
        fields = line.split(b" ", 5)
        if len(fields) < 5:
            continue
        point = fields[4]
        if prefix is not None and not point.startswith(prefix):
            continue
        points.append(Path(_unescape(point)))
    if under is not None:
        root = under.rstrip("/")
        points = [p for p in points if str(p) == root or str(p).startswith(root + "/")]
    return points


def mounts_under(*directories: Path) -> list[Path]:
    """Mount points at or below any of ``directories``, deepest (last mounted) first:
    unmount order. A directory that does not exist has nothing mounted on or below it."""
    prefixes = [os.path.realpath(d) for d in directories if os.path.isdir(d)]
    if not prefixes:
        return []
    common = os.path.commonpath(prefixes)
    found = [
        point
        for point in mount_points(under=common)
        if any(str(point) == p or str(point).startswith(p.rstrip("/") + "/") for p in prefixes)
    ]
    return list(reversed(found))


def overlay_supported(filesystems: Path = Path("/proc/filesystems")) -> bool:
    try:
        return any(line.split()[-1] == "overlay" for line in filesystems.read_text().splitlines())
    except OSError:
        return False
