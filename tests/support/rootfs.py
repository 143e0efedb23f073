"""Build tiny busybox root filesystems for tests that run real containers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
# Applets the test services use; each becomes a symlink to /bin/busybox.
APPLETS = (
    "sh",
    "echo",
    "cat",
    "ls",
    "sleep",
    "touch",
    "test",
    "true",
    "false",
    "printf",
    "trap",
    "date",
    "id",
    "mount",
    "grep",
    "wc",
    "kill",
    "env",
    "hostname",
)
# Mount points runc needs to exist in a read-only rootfs.
MOUNT_POINTS = ("proc", "dev", "sys", "run", "tmp", "etc", "var", "data")


def find_static_busybox() -> Path | None:
    """The busybox-static binary (it must be static: the rootfs has no libc)."""
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if not path.is_file():
            continue
        with path.open("rb") as binary:
            head = binary.read(4096)
        # A dynamic ELF names its interpreter near the start; a static one does not.
        if head[:4] == b"\x7fELF" and b"/ld-linux" not in head:
            return path
    return None


def make_busybox_rootfs(root: Path) -> Path:
    """Create ``root`` as a minimal rootfs: /bin/busybox, applet links, mount points."""
    busybox = find_static_busybox()
    if busybox is None:
        raise RuntimeError("busybox-static is not installed (apt-get install busybox-static)")
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        link = root / "bin" / applet
        if not link.exists():
            os.symlink("busybox", link)
    for mount_point in MOUNT_POINTS:
        (root / mount_point).mkdir(exist_ok=True)
    for etc_file in ("hosts", "resolv.conf"):
        (root / "etc" / etc_file).touch()
    return root
