"""The container's cgroup directories: which processes are in them, and removing them.

runc creates ``linux.cgroupsPath`` under every hierarchy (cgroup v1, hybrid or
v2) and, on `runc delete`, removes the leaf but leaves its parents
(``/system/extensions``). We remove the leaf when runc did not, and the empty
parents we created ourselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from extsvc.executor.errors import LaunchError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """The mounted hierarchies: the root itself on cgroup v2, each controller dir on v1."""
    if (root / "cgroup.controllers").exists():
        return [root]
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def cgroup_dirs(cgroups_path: str, root: Path = CGROUP_ROOT) -> list[Path]:
    relative = cgroups_path.strip("/")
    return [hierarchy / relative for hierarchy in hierarchies(root)]


def processes(cgroups_path: str, root: Path = CGROUP_ROOT) -> set[int]:
    pids: set[int] = set()
    for directory in cgroup_dirs(cgroups_path, root):
        try:
            nested = list(directory.glob("**/cgroup.procs"))
        except OSError:  # removed while we looked (runc delete, another executor)
            nested = []
        for procs in [directory / "cgroup.procs", *nested]:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(pid) for pid in procs.read_text().split())
    return pids


def holds(cgroups_path: str, pid: int) -> bool:
    """Whether process ``pid`` is in the cgroup (or one below it), in any hierarchy."""
    path = "/" + cgroups_path.strip("/")
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        member = line.split(":", 2)[-1]
        if member == path or member.startswith(path + "/"):
            return True
    return False


def kill(
    cgroups_path: str,
    signum: int = signal.SIGKILL,
    spare: int | None = None,
    root: Path = CGROUP_ROOT,
) -> int:
    """Send ``signum`` to every process in the cgroup but ``spare``; how many got it.

    By PID: a process may end (and its PID be reused) between the listing and the
    signal, a window a cgroup without cgroup.kill cannot close.
    """
    sent = 0
    for pid in processes(cgroups_path, root) - {spare}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            sent += 1
    return sent


def remove(cgroups_path: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """rmdir the cgroup (children first) in every hierarchy; returns what is still there."""
    left: list[Path] = []
    for directory in cgroup_dirs(cgroups_path, root):
        if not directory.exists():
            continue
        children = sorted(
            (p for p in directory.glob("**/") if p != directory), key=lambda p: -len(p.parts)
        )
        for path in [*children, directory]:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(path)
    return left


def existing_parents(cgroups_path: str, root: Path = CGROUP_ROOT) -> set[str]:
    """Parent dirs of ``cgroups_path`` that exist now, as hierarchy-relative strings."""
    found: set[str] = set()
    for hierarchy in hierarchies(root):
        parent = Path(cgroups_path.strip("/")).parent
        while str(parent) not in (".", ""):
            if (hierarchy / parent).is_dir():
                found.add(str(hierarchy / parent))
            parent = parent.parent
    return found


def remove_empty(paths: list[Path]) -> None:
    """rmdir each path that is an empty cgroup (the kernel refuses a non-empty one)."""
    for path in sorted(paths, key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            path.rmdir()


def ensure_free(cgroups_path: str, name: str, root: Path = CGROUP_ROOT) -> None:
    """Refuse to create a container in a cgroup that already holds processes.

    Ours are gone by then (cleaned up after each run, and a container created ahead is
    discarded before another is created), so they belong to another executor running a
    service of the same name, or to something a person started. runc would put our
    container beside them, and stopping ours would kill them too.
    """
    pids = sorted(processes(cgroups_path, root))
    if pids:
        shown = ", ".join(str(p) for p in pids[:10]) + (" ..." if len(pids) > 10 else "")
        raise LaunchError(
            f"cgroup {cgroups_path} already holds processes this executor did not start "
            f"(PIDs {shown}): another executor runs a service named {name!r}? "
            "Stop it, or rename one of the services"
        )
