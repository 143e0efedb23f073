"""Shared pytest setup.

Tests marked ``runc`` need root, a real runc and busybox-static; tests marked
``root`` (and those using ``tiny_log_dir``) need root alone. On a developer
machine without them they skip with the reason; under ``CI=true`` a missing
piece is a failure, because CI must prove the containers really run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import cannot_run
from tests.support.rootfs import find_static_busybox, make_busybox_rootfs


def runc_missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install runc)"
    if find_static_busybox() is None:
        return "busybox-static is not installed (apt-get install busybox-static)"
    return None


# systemd's marks of a unit's process: with them, `extsvc run` places containers inside
# the unit's cgroup and logs to journald (docs/boot.md). A suite run by a systemd unit (a
# CI runner) behaves as one run from a shell; a test that wants them passes them.
UNIT_VARIABLES = ("INVOCATION_ID", "JOURNAL_STREAM")


def pytest_configure(config: pytest.Config) -> None:
    for variable in UNIT_VARIABLES:
        os.environ.pop(variable, None)
    config.addinivalue_line(
        "markers", "root: needs root (no runc); fails instead of skipping when CI=true"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("runc") is not None:
        reason = runc_missing_reason()
        if reason is not None:
            cannot_run(reason, "this runc test")
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        cannot_run("needs root")


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A fresh busybox rootfs directory for one test."""
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def tiny_log_dir(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path / "logs"`` (a daemon's --log-dir in realrunc) as a 64 KiB tmpfs: a
    disk that fills. Needs root."""
    if os.geteuid() != 0:
        cannot_run("mounting a tmpfs needs root")
    mount = tmp_path / "logs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
