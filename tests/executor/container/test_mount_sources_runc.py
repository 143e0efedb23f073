"""Missing mount sources are created only where docs/executor.md allows.

The compiler lists only sources below /var or /run in a plan; the executor checks
again, for a plan written by hand or by an older compiler, and never creates a
source inside its own state directory.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from extsvc.compiler.format.servicepolicy import MountSource
from extsvc.executor.errors import LaunchError
from extsvc.executor.runtime.bundles import create_mount_sources

pytestmark = pytest.mark.root  # creates directories under /run


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A fresh directory below /run, removed afterwards."""
    path = Path("/run/extsvc-tests") / f"mount-sources-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_missing_source_below_run_is_created_0700(run_dir: Path, tmp_path: Path) -> None:
    source = run_dir / "a" / "b"
    create_mount_sources([MountSource(str(source))], tmp_path / "state")
    assert source.is_dir() and source.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "source",
    ["/etc/extsvc-test-{id}", "/tmp/extsvc-test-{id}", "/var/../etc/extsvc-test-{id}", "x-{id}"],
)
def test_a_missing_source_elsewhere_is_refused_and_not_created(source: str, tmp_path: Path) -> None:
    path = source.format(id=uuid.uuid4().hex[:12])
    with pytest.raises(LaunchError, match="creates missing mount sources only below /var or /run"):
        create_mount_sources([MountSource(path)], tmp_path / "state")
    assert not os.path.lexists(path)


def test_a_source_inside_the_state_dir_is_refused(run_dir: Path) -> None:
    state = run_dir / "state"
    state.mkdir()
    with pytest.raises(LaunchError, match="outside its state directory"):
        create_mount_sources([MountSource(str(state / "runc" / "planted"))], state)
    assert not (state / "runc").exists()


def test_an_existing_source_anywhere_is_left_alone(tmp_path: Path) -> None:
    create_mount_sources([MountSource(str(tmp_path)), MountSource("/dev")], tmp_path / "state")


def test_an_owner_and_mode_from_x_extsvc_are_given_to_a_created_source(
    run_dir: Path, tmp_path: Path
) -> None:
    source = run_dir / "daemon"
    create_mount_sources([MountSource(str(source), 330, 331, 0o750)], tmp_path / "state")
    status = source.stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (330, 331, 0o750)


def test_an_existing_source_gets_the_owner_and_mode_too(run_dir: Path, tmp_path: Path) -> None:
    # A directory an earlier run (or Talos's rule) made root:root 0700: the daemon that
    # drops root needs it all the same.
    source = run_dir / "daemon"
    source.mkdir(mode=0o700)
    create_mount_sources([MountSource(str(source), 330, 330, 0o2750)], tmp_path / "state")
    status = source.stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (330, 330, 0o2750)


def test_an_owner_is_never_given_through_a_symbolic_link(run_dir: Path, tmp_path: Path) -> None:
    target = run_dir / "elsewhere"
    target.mkdir(mode=0o755)
    link = run_dir / "daemon"
    link.symlink_to(target)
    with pytest.raises(LaunchError, match="is a symbolic link"):
        create_mount_sources([MountSource(str(link), 330, 330, 0o750)], tmp_path / "state")
    status = target.stat()
    assert (status.st_uid, status.st_mode & 0o777) == (0, 0o755)


def test_an_owner_outside_var_and_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="only to mount sources below /var or /run"):
        create_mount_sources([MountSource(str(tmp_path), 330, 330, 0o750)], tmp_path / "state")
    assert tmp_path.stat().st_uid == 0
