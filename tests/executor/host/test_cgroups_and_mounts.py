"""The host's cgroups and mount table: directories found and removed in every hierarchy, a cgroup
kill, mountinfo's escapes."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from extsvc.executor.runtime import cgroups, mounts


def test_cgroup_dirs_are_found_and_removed_in_every_hierarchy(tmp_path: Path) -> None:
    for controller in ("memory", "pids"):
        leaf = tmp_path / controller / "system" / "extensions" / "a"
        (leaf / "child").mkdir(parents=True)
    (tmp_path / "pids" / "system" / "extensions" / "a" / "cgroup.procs").write_text("1\n2\n")
    assert cgroups.processes("/system/extensions/a", tmp_path) == {1, 2}
    (tmp_path / "pids" / "system" / "extensions" / "a" / "cgroup.procs").unlink()
    assert cgroups.remove("/system/extensions/a", tmp_path) == []
    assert not (tmp_path / "memory" / "system" / "extensions" / "a").exists()
    assert (tmp_path / "memory" / "system" / "extensions").exists()


def test_a_cgroup_kill_signals_every_member_but_the_spared_one(tmp_path: Path) -> None:
    members = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        nested = tmp_path / "system" / "extensions" / "a" / "child"
        nested.mkdir(parents=True)
        (tmp_path / "cgroup.controllers").write_text("pids\n")  # cgroup v2: one hierarchy
        (nested.parent / "cgroup.procs").write_text(f"{members[0].pid}\n{members[1].pid}\n")
        (nested / "cgroup.procs").write_text(f"{members[2].pid}\n")
        sent = cgroups.kill("/system/extensions/a", signal.SIGTERM, members[0].pid, tmp_path)
        assert sent == 2
        assert [m.wait(10) for m in members[1:]] == [-signal.SIGTERM] * 2
        assert members[0].poll() is None
    finally:
        for member in members:
            member.kill()
            member.wait()


def test_mountinfo_escapes_are_decoded(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "90 22 0:50 / /run/extsvc/rootfs/with\\040space rw - overlay overlay rw\n"
    )
    assert mounts.mount_points(info) == [Path("/"), Path("/run/extsvc/rootfs/with space")]


def test_mount_points_under_a_directory_match_escaped_names_and_whole_components(
    tmp_path: Path,
) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "90 22 0:50 / /run/my\\040state/rootfs/a rw - overlay overlay rw\n"
        "91 22 0:50 / /run/my\\040state/rootfs/a/proc rw - proc proc rw\n"
        "92 22 0:50 / /run/my\\040statement rw - tmpfs tmpfs rw\n"
    )
    assert mounts.mount_points(info, under="/run/my state") == [
        Path("/run/my state/rootfs/a"),
        Path("/run/my state/rootfs/a/proc"),
    ]
