"""The executor's state directory: where each run's rootfs overlay and runtime bundle live.

    <state>/runc/                 runc --root
    <state>/bundles/<name>/       runtime bundle: the config.json that actually runs
    <state>/overlay/<name>/       tmpfs holding the overlay's upper/ and work/
    <state>/rootfs/<name>/        the overlay mount: the container's root
    <state>/control.sock          control socket (executor.daemon.control)
    <state>/lock                  one executor per state dir

The compiled bundle is never written to; writes of the container land in the
tmpfs upper and vanish when it is unmounted at stop (the seed's "ephemeral
root filesystem").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extsvc.executor.errors import LaunchError
from extsvc.executor.runtime import mounts

UPPER_TMPFS_OPTIONS = "mode=0755"


@dataclass(frozen=True)
class Workspace:
    state_dir: Path

    @property
    def runc_root(self) -> Path:
        return self.state_dir / "runc"

    def bundle_dir(self, name: str) -> Path:
        return self.state_dir / "bundles" / name

    def overlay_dir(self, name: str) -> Path:
        return self.state_dir / "overlay" / name

    def rootfs_dir(self, name: str) -> Path:
        return self.state_dir / "rootfs" / name

    def create(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # The control socket and the runtime configs are root's business only.
        os.chmod(self.state_dir, 0o700)
        for sub in ("runc", "bundles", "overlay", "rootfs"):
            (self.state_dir / sub).mkdir(exist_ok=True)

    def mount_rootfs(self, name: str, lower: str) -> Path:
        """Overlay ``lower`` with a fresh tmpfs upper; returns the merged root."""
        if not os.path.isdir(lower):
            raise LaunchError(f"rootfs {lower} does not exist (is the extension installed?)")
        if any(c in lower for c in ",:\\"):
            raise LaunchError(f"rootfs path {lower!r} cannot be an overlay lowerdir (',' or ':')")
        self.unmount_rootfs(name)  # a leftover of a crashed run would shadow the new one
        overlay, merged = self.overlay_dir(name), self.rootfs_dir(name)
        overlay.mkdir(parents=True, exist_ok=True)
        merged.mkdir(parents=True, exist_ok=True)
        try:
            mounts.mount("tmpfs", overlay, "tmpfs", UPPER_TMPFS_OPTIONS)
            (overlay / "upper").mkdir()
            (overlay / "work").mkdir()
            mounts.mount(
                "overlay",
                merged,
                "overlay",
                f"lowerdir={lower},upperdir={overlay / 'upper'},workdir={overlay / 'work'}",
            )
        except OSError as error:
            self.unmount_rootfs(name)
            raise LaunchError(f"cannot mount the ephemeral rootfs: {error.strerror}") from None
        return merged

    def unmount_rootfs(self, name: str) -> None:
        # One read of the mount table for both (none when neither exists: a first start).
        directories = (self.rootfs_dir(name), self.overlay_dir(name))
        for point in mounts.mounts_under(*directories):
            mounts.unmount(point)
        for directory in directories:
            with contextlib.suppress(OSError):
                directory.rmdir()

    def write_runtime_config(self, name: str, spec: dict[str, Any]) -> Path:
        bundle = self.bundle_dir(name)
        bundle.mkdir(parents=True, exist_ok=True)
        temporary = bundle / "config.json.tmp"
        temporary.write_text(json.dumps(spec))  # read by runc only: compact is faster
        temporary.rename(bundle / "config.json")
        return bundle

    def remove_bundle(self, name: str) -> None:
        shutil.rmtree(self.bundle_dir(name), ignore_errors=True)

    def leftover_names(self) -> set[str]:
        """Services with a rootfs, overlay or bundle dir left by an earlier executor."""
        names: set[str] = set()
        for sub in ("rootfs", "overlay", "bundles"):
            with contextlib.suppress(FileNotFoundError):
                names.update(p.name for p in (self.state_dir / sub).iterdir())
        return names
