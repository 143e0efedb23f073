"""Where the containers' cgroups go: Talos's paths, or inside the executor's systemd unit.

The compiled spec keeps Talos's ``linux.cgroupsPath`` (``/system/extensions/<name>``).
On a host whose init is systemd, a cgroup created there is one systemd does not know:
`systemctl status` does not show the service, and systemd's rule that a cgroup subtree
has one writer is broken. So, run by a systemd unit, the executor places each container
*inside its own unit's cgroup* (``Delegate=yes`` hands that subtree to it, containerd's
way): ``/system.slice/extsvc.service`` + ``/system/extensions/<name>``. Why this and not
a scope per container through runc's systemd driver (podman's way): docs/boot.md.

The setting (``run --cgroup-parent``):

- ``auto`` (default): the executor's own cgroup when it runs as a systemd unit
  (``$INVOCATION_ID``, which systemd sets for every unit it starts, and a cgroup of its
  own other than the root); else ``none``;
- ``none``: the compiled paths as they are (a Talos-like init);
- an absolute path: that cgroup, as the parent of every compiled path.

Each placement is a host adaptation (executor.runtime.adapt): an event says so. The same
parent is used to create, signal, clean up and recover (executor.runtime.recovery): a
leftover cgroup is looked for where it was put.

``decide`` is pure (the environment, /proc/self/cgroup and the hierarchy come in as
values), so every case is tested without systemd.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extsvc.executor.runtime.cgroups import CGROUP_ROOT

AUTO = "auto"
NONE = "none"
# systemd sets it for every process of a unit it starts (systemd.exec(5), since v232).
INVOCATION_ID = "INVOCATION_ID"
# systemd ≥ 251 marks the cgroup of a unit with Delegate=yes so (systemd.io/CGROUP_DELEGATION).
DELEGATE_XATTR = "trusted.delegate"
# On cgroup v2 a cgroup that has processes cannot hand controllers to its children
# ("no internal processes"): the executor moves itself into this leaf of its unit's cgroup.
EXECUTOR_LEAF = "executor"


@dataclass(frozen=True)
class CgroupPlacement:
    """The parent of every container cgroup (None: the compiled path as is) and why."""

    parent: str | None = None
    reason: str = ""
    # A warning for the event (e.g. the unit does not delegate its cgroup), or "".
    warning: str = ""

    def place(self, cgroups_path: str) -> str:
        """``cgroups_path`` (absolute, as compiled) where this host's containers go."""
        if self.parent is None:
            return cgroups_path
        return self.parent.rstrip("/") + "/" + cgroups_path.lstrip("/")

    def describe(self, cgroups_path: str) -> str:
        """The adaptation's event text; "" when nothing is changed."""
        if self.parent is None:
            return ""
        text = (
            f"host adaptation: cgroup {self.place(cgroups_path)} instead of {cgroups_path} "
            f"({self.reason})"
        )
        return f"{text}; {self.warning}" if self.warning else text


def run_by_systemd(environ: Mapping[str, str]) -> bool:
    """Whether a systemd unit started this process ($INVOCATION_ID)."""
    return bool(environ.get(INVOCATION_ID))


def own_cgroup(self_cgroup: str) -> str | None:
    """The cgroup systemd tracks this process in, from /proc/self/cgroup's text.

    cgroup v1 and hybrid: the ``name=systemd`` hierarchy's line (on hybrid it names the
    same path as the unified one); v2: the ``0::`` line.
    """
    unified = None
    for line in self_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "name=systemd":
            return path
        if number == "0" and controllers == "":
            unified = path
    return unified


def is_unified(root: Path = CGROUP_ROOT) -> bool:
    """cgroup v2 alone (no v1 hierarchy): the root carries cgroup.controllers."""
    return (root / "cgroup.controllers").exists()


def delegated(cgroup: str, root: Path = CGROUP_ROOT) -> bool | None:
    """Whether systemd marked ``cgroup`` delegated; None when that cannot be told.

    systemd sets the attribute in the hierarchy it tracks units in: the v2 root, else
    ``unified`` (hybrid) or ``systemd`` (v1). ENODATA there: not delegated (or a
    systemd older than 251, which has no such mark).
    """
    relative = cgroup.lstrip("/")
    if is_unified(root):
        candidates = [root / relative]
    else:
        candidates = [root / "unified" / relative, root / "systemd" / relative]
    answer = None
    for directory in candidates:
        try:
            return os.getxattr(directory, DELEGATE_XATTR) == b"1"
        except OSError as error:
            if error.errno == errno.ENODATA:
                answer = False
    return answer


def enter_leaf(
    placement: CgroupPlacement,
    root: Path = CGROUP_ROOT,
    proc_self_cgroup: Path = Path("/proc/self/cgroup"),
) -> str | None:
    """On cgroup v2, move this process into ``<parent>/executor`` when the containers go
    under its own cgroup; returns the leaf, or None when nothing was moved.

    v2 lets a cgroup hand controllers (memory, cpu, pids) to its children only while it
    holds no process itself: runc then enables them down to each container. Done before
    any child is spawned, so every runc and container starts from the leaf. v1 has no
    such rule: nothing moves.
    """
    if placement.parent is None or not is_unified(root):
        return None
    own = own_cgroup(_read(proc_self_cgroup))
    if own != placement.parent:
        return None  # an explicit parent elsewhere: ours is not in the way
    leaf = root / placement.parent.lstrip("/") / EXECUTOR_LEAF
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return f"{placement.parent.rstrip('/')}/{EXECUTOR_LEAF}"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def checked_setting(setting: str) -> str:
    """``setting`` as used (an absolute path without trailing "/"; "/" is ``none``);
    raises ValueError with what is expected."""
    if setting in (AUTO, NONE):
        return setting
    parts = setting.split("/")
    if not setting.startswith("/") or ".." in parts or "." in parts or "\n" in setting:
        raise ValueError(f"expected auto, none or an absolute cgroup path, not {setting!r}")
    return setting.rstrip("/") or NONE


def decide(
    setting: str,
    environ: Mapping[str, str],
    self_cgroup: str,
    is_delegated: bool | None = None,
) -> CgroupPlacement:
    """The placement for ``--cgroup-parent setting``; raises ValueError for a bad one."""
    setting = checked_setting(setting)
    if setting == NONE:
        return CgroupPlacement()
    if setting != AUTO:
        return CgroupPlacement(setting, "--cgroup-parent")
    if not run_by_systemd(environ):
        return CgroupPlacement()
    own = own_cgroup(self_cgroup)
    if not own or own == "/":
        return CgroupPlacement()
    if own.rsplit("/", 1)[-1] == EXECUTOR_LEAF:
        # Moved there by a previous start of this very process image (an exec in place).
        own = own.rsplit("/", 1)[0] or "/"
    unit = own.rsplit("/", 1)[-1]
    warning = ""
    if is_delegated is False:
        warning = (
            f"{unit} does not delegate its cgroup: add Delegate=yes to the unit "
            "(`extsvc systemd-unit` writes it), or pass --cgroup-parent none"
        )
    return CgroupPlacement(own, f"inside the executor's systemd unit {unit}", warning)


def probe(setting: str, proc_self_cgroup: Path = Path("/proc/self/cgroup")) -> CgroupPlacement:
    """``decide`` for this process; raises ValueError for a bad setting."""
    self_cgroup = _read(proc_self_cgroup)
    placement = decide(setting, os.environ, self_cgroup)
    if setting == AUTO and placement.parent is not None:
        placement = decide(setting, os.environ, self_cgroup, delegated(placement.parent))
    return placement
