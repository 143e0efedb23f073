"""Shared pytest setup.

Tests marked ``runc`` need root, a real runc and busybox-static. On a developer
machine without them they skip with the reason; under ``CI=true`` a missing
piece is a failure, because CI must prove the containers really run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.rootfs import find_static_busybox, make_busybox_rootfs

IN_CI = os.environ.get("CI", "").lower() == "true"


def runc_missing_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install runc)"
    if find_static_busybox() is None:
        return "busybox-static is not installed (apt-get install busybox-static)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("runc") is None:
        return
    reason = runc_missing_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but this runc test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A fresh busybox rootfs directory for one test."""
    return make_busybox_rootfs(tmp_path / "rootfs")
