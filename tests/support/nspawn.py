"""A real systemd as PID 1 (systemd-nspawn --boot) with extsvc installed from a wheel.

The rig behind tests/boot (docs/boot.md, "systemd"): a Debian image built by
mmdebstrap and cached outside the repository, a fresh copy of it per session,
extsvc installed into it from a wheel of this checkout (a venv at /opt/extsvc, its
script linked onto PATH as pipx does), services compiled inside, the unit written
by the installed `extsvc systemd-unit`, enabled, and the machine booted, so the
executor starts at boot as it would on a host. Runc runs nested inside.

Facts it relies on (found by experiment on these machines, cgroup v1/hybrid):
- nspawn mounts the v1 controllers read-only; a oneshot ordered before
  sysinit.target remounts them read-write so nested runc can create cgroups.
- nspawn is started inside a child cgroup of our own in every hierarchy, so the
  machine sees (and its runc writes) that subtree, never the host's root cgroups.
- ``--system-call-filter=@keyring``: nspawn's filter fails keyctl with EPERM, which
  runc does not tolerate ("unable to join session keyring").
- minbase has no /etc/hosts, which bundles bind-mount.

Cleanup (``Machine.close``) ends every process of the machine, removes its cgroups
and its root directory whatever the tests did; nspawn's mounts live in its own
mount namespace and go with it.

API for tests: ``boot(...)`` (a context manager) -> ``Machine`` with ``run``,
``systemctl``, ``journal``, ``extsvc``, ``services``, ``show``, ``wait_for``,
``recompile``; the layout constants below say where things are inside.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.executor.runtime import cgroups
from tests.support.rootfs import make_busybox_rootfs
from tests.support.wheel import build_wheel

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "runc",
    "busybox-static", "procps", "iproute2",
)  # fmt: skip
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE_DIR = Path(os.environ.get("EXTSVC_RIG_CACHE") or "/var/cache/extsvc/nspawn")
IMAGES_KEPT = 2

# Inside the machine.
VENV = Path("/opt/extsvc")
EXTSVC = Path("/usr/local/bin/extsvc")  # a link to VENV/bin/extsvc, as pipx installs
SOURCE = Path("/etc/extsvc/src")
OUT = Path("/var/lib/extsvc/out")
STATE_DIR = Path("/run/extsvc")
LOG_DIR = Path("/var/log/extsvc")
ROOTFS_BASE = Path("/usr/local/lib/containers")
UNIT = "extsvc.service"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

REMOUNT_UNIT = """\
[Unit]
Description=cgroup v1 controllers read-write for nested runc (tests/support/nspawn.py)
DefaultDependencies=no
Before=sysinit.target
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d" || true; done'

[Install]
WantedBy=sysinit.target
"""


class RigError(Exception):
    """The rig could not be set up (not a failure of what the tests check)."""


def missing() -> str | None:
    """Why the rig cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool, package in (("mmdebstrap", "mmdebstrap"), ("systemd-nspawn", "systemd-container")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package}; `make system-deps`)"
    return None


# -- the image ----------------------------------------------------------------------------


def host_mirror() -> str:
    """The Debian mirror of the host's apt sources (the only repository reachable)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = line.split()
                for word in words:
                    if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                        return word.rstrip("/")
    return DEFAULT_MIRROR


# Where systemd comes from: Debian 12's own (252), or bookworm-backports (254), for the
# unit a systemd >= 253 gets (Type=notify-reload).
STABLE = "bookworm"
BACKPORTS = "bookworm-backports"


def image_key(mirror: str, release: str = STABLE) -> str:
    return _digest(
        {"suite": SUITE, "release": release, "mirror": mirror, "packages": sorted(PACKAGES)}
    )


def image(
    cache: Path = CACHE_DIR, log: Callable[[str], None] = print, release: str = STABLE
) -> Path:
    """The machine's image: a directory tree with extsvc's dependencies installed in
    VENV, built once per package list and dependency list (under a lock: concurrent
    test runs share it) and kept in ``cache`` between runs. Two layers: the Debian base
    (mmdebstrap, a tarball, 40 s to 3 min) and the tree with the venv (about 30 s). It
    is only ever read: each machine runs on an overlay of it (``boot``). ``release``
    BACKPORTS takes every package backports has (systemd 254) from there."""
    mirror = host_mirror()
    cache.mkdir(parents=True, exist_ok=True)
    prefix = f"image-{release}-"
    base = cache / f"{prefix}{image_key(mirror, release)}.tar"
    tree = cache / f"{prefix}{image_key(mirror, release)}-venv-{_digest(dependencies())}"
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tree.is_dir():
            return tree
        if not base.exists():
            log(f"building {base} with mmdebstrap (once; a few minutes)")
            sources = [mirror]
            if release != STABLE:
                sources = [f"deb {mirror} {SUITE} main", f"deb {mirror} {release} main"]
            command = [
                "mmdebstrap", "--variant=minbase", "--format=tar", "--quiet",
                f"--aptopt=APT::Default-Release \"{release}\"",
                f"--include={','.join(PACKAGES)}", SUITE, "{partial}", *sources,
            ]  # fmt: skip
            _build(base, lambda partial: _run([s.format(partial=partial) for s in command]))
        log(f"building {tree}: the base with extsvc's dependencies in {VENV}")
        _build(tree, lambda partial: _venv_layer(base, partial))
        _prune(cache, prefix, keep={base, tree})
        return tree


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def dependencies() -> list[str]:
    """extsvc's requirements as pyproject.toml states them."""
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as project:
        return list(tomllib.load(project)["project"]["dependencies"])


def _run(command: list[str], timeout: float = 900) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RigError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")


def _build(target: Path, make: Callable[[Path], None]) -> None:
    """``make(partial)`` then rename: what is in the cache is always whole."""
    partial = target.with_name(target.name + ".partial")
    _remove(partial)
    try:
        make(partial)
        partial.rename(target)
    finally:
        _remove(partial)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _venv_layer(base: Path, root: Path) -> None:
    root.mkdir()
    _run(["tar", "-xf", str(base), "-C", str(root)])
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    wheel_dir = root / "root/wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
          "-w", str(wheel_dir), *dependencies()])  # fmt: skip
    chroot(
        root,
        f"python3 -m venv {VENV} && {VENV}/bin/pip install -q --no-index "
        f"--disable-pip-version-check --find-links /root/wheels {' '.join(_quoted())}",
    )
    shutil.rmtree(wheel_dir)


def _quoted() -> list[str]:
    return [shlex.quote(requirement) for requirement in dependencies()]


def _prune(cache: Path, prefix: str, keep: set[Path]) -> None:
    """Older images of the same release go (a changed package or dependency list makes
    new ones); another release's ("image-bookworm-backports-...") stay."""
    ours = re.compile(re.escape(prefix) + r"[0-9a-f]{16}(\.tar|-venv-[0-9a-f]{16})")
    for stale in cache.iterdir():
        if ours.fullmatch(stale.name) and stale not in keep:
            _remove(stale)


# -- cgroups of the machine -------------------------------------------------------------


def own_cgroups() -> dict[Path, str]:
    """Each mounted hierarchy and this process's cgroup in it (from /proc/self/cgroup)."""
    paths: dict[frozenset[str], str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        names = {c.removeprefix("name=") for c in controllers.split(",")} if controllers else set()
        paths[frozenset(names or {""})] = path
    found: dict[Path, str] = {}
    for hierarchy in cgroups.hierarchies():
        if hierarchy == cgroups.CGROUP_ROOT or hierarchy.name == "unified":
            key = frozenset({""})
        else:
            key = frozenset(hierarchy.name.split(","))
        if key in paths:
            found[hierarchy] = paths[key]
    return found


def make_cgroups(name: str) -> list[Path]:
    """A child cgroup ``name`` of our own in every hierarchy (cpuset filled in, as v1
    requires before a process may join)."""
    made = []
    for hierarchy, own in own_cgroups().items():
        directory = hierarchy / own.lstrip("/") / name
        directory.mkdir(exist_ok=True)
        made.append(directory)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            if (directory / setting).exists():
                (directory / setting).write_text((directory.parent / setting).read_text())
    return made


def join(directories: list[Path]) -> Callable[[], None]:
    def preexec() -> None:
        for directory in directories:
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    return preexec


def cgroup_processes(directories: list[Path]) -> set[int]:
    pids: set[int] = set()
    for directory in directories:
        with contextlib.suppress(OSError):
            for procs in directory.glob("**/cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(pid) for pid in procs.read_text().split())
    return pids


def remove_cgroups(directories: list[Path]) -> list[Path]:
    """Kill whatever is left in them, rmdir them deepest first; what is still there."""
    deadline = time.monotonic() + 10
    while (pids := cgroup_processes(directories)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    nested = [p for d in directories if d.exists() for p in d.glob("**/")]
    cgroups.remove_empty(nested)
    return [d for d in directories if d.exists()]


# -- the machine ----------------------------------------------------------------------


@dataclass
class Machine:
    """A booted machine: its root directory on the host and its PID 1."""

    name: str
    root: Path
    process: subprocess.Popen[bytes]
    console: Path
    cgroup_dirs: list[Path]
    leader: int = 0
    closed: bool = field(default=False)

    # Commands inside, as root, with a clean environment (never the test's).

    def run(
        self, *argv: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", f"PATH={PATH}"]
        done = subprocess.run(
            [*command, *argv], capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"in the machine: {' '.join(argv)} exited {done.returncode}\n"
                f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
            )
        return done

    def sh(self, script: str, check: bool = True) -> str:
        return self.run("/bin/sh", "-c", script, check=check).stdout

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, prop: str, unit: str = UNIT) -> str:
        """One property of a unit (`systemctl show -p`)."""
        return self.systemctl("show", "--value", "-p", prop, unit).stdout.strip()

    def journal(self, *args: str) -> str:
        return self.run("journalctl", "--no-pager", "-q", *args).stdout

    def extsvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The installed `extsvc`, against the unit's state dir."""
        return self.run(str(EXTSVC), *args, check=check)

    def listing(self) -> dict[str, Any]:
        """`extsvc service -o json`: {"now", "plan", "services"}."""
        shown = self.extsvc("service", "--state-dir", str(STATE_DIR), "-o", "json").stdout
        return dict(json.loads(shown))

    def services(self) -> dict[str, dict[str, Any]]:
        """Each service's summary (`extsvc service -o json`) by id."""
        return {s["id"]: s for s in self.listing()["services"]}

    def runc_containers(self) -> list[str]:
        """The ids `runc list` shows in the unit's state dir."""
        return sorted(self.runc_states())

    def runc_states(self, after: str = "") -> dict[str, dict[str, Any]]:
        """`runc list -f json` in the unit's state dir, by id; ``after``: a shell command
        run just before, in the same shell (nothing of ours in between)."""
        # No state dir (nothing ever ran, or all removed): runc says so and lists nothing.
        listing = f"{{ runc --root {STATE_DIR / 'runc'} list -f json 2>/dev/null || true; }}"
        shown = self.sh(f"{after} && {listing}" if after else listing).strip()
        return {c["id"]: c for c in json.loads(shown or "null") or []}

    def read(self, path: Path | str) -> str:
        return (self.root / str(path).lstrip("/")).read_text(errors="replace")

    def write(self, path: Path | str, text: str) -> None:
        target = self.root / str(path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Until ``check()`` is truthy (its value) or ``timeout``; a failure says ``what``,
        what the check last raised, `extsvc service` and the unit's status and journal."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = check()
                if value:
                    return value
            except (AssertionError, ValueError, KeyError) as error:
                last = error
            if time.monotonic() > deadline:
                shown = self.extsvc("service", "--state-dir", str(STATE_DIR), check=False)
                raise AssertionError(
                    f"waited {timeout:g}s for {what} (last raised: {last!r})\n"
                    f"--- extsvc service\n{shown.stdout}{shown.stderr}\n{self.diagnosis()}"
                )
            time.sleep(0.25)

    def diagnosis(self) -> str:
        status = self.systemctl("status", UNIT, check=False).stdout
        journal = self.run("journalctl", "--no-pager", "-q", "-u", UNIT, "-n", "60", check=False)
        return f"--- systemctl status\n{status}\n--- journalctl -u\n{journal.stdout}"

    def recompile(self) -> None:
        """`extsvc compile` of SOURCE into OUT, inside (after changing SOURCE)."""
        self.extsvc("compile", str(SOURCE), "-o", str(OUT))

    def add_service(self, name: str, document: str) -> None:
        """A service YAML in SOURCE and its busybox rootfs (compile with ``recompile``)."""
        self.write(SOURCE / f"{name}.yaml", document)
        rootfs = self.root / str(ROOTFS_BASE).lstrip("/") / name
        if not rootfs.exists():
            make_busybox_rootfs(rootfs)

    def close(self) -> None:
        """Power off (bounded), then kill what is left, remove cgroups and the root."""
        if self.closed:
            return
        self.closed = True
        if self.process.poll() is None:
            # nspawn turns SIGTERM into the container's halt (its --kill-signal for --boot).
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(60)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        teardown(self.root, self.cgroup_dirs)


def teardown(root: Path, directories: list[Path]) -> None:
    """Remove the machine's cgroups (killing what is in them), every mount at or below
    ``root`` (its overlay) and the directory holding it; raises if a cgroup stays."""
    left = remove_cgroups(directories)
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount_point in sorted(mounted, key=len, reverse=True):
        if mount_point == str(root) or mount_point.startswith(f"{root}/"):
            subprocess.run(["umount", "-l", mount_point], check=False)
    shutil.rmtree(root.parent, ignore_errors=True)
    if left:
        raise RigError(f"cgroups of the machine left behind: {left}")


def prepare_root(root: Path, wheel: Path) -> None:
    """Install extsvc into the image's venv from ``wheel`` (chroot, offline)."""
    shutil.copy(wheel, root / "root" / wheel.name)
    (root / "etc/systemd/system/cgroup-rw.service").write_text(REMOUNT_UNIT)
    sysinit = root / "etc/systemd/system/sysinit.target.wants"
    sysinit.mkdir(parents=True, exist_ok=True)
    (sysinit / "cgroup-rw.service").symlink_to("/etc/systemd/system/cgroup-rw.service")
    chroot(
        root,
        f"{VENV}/bin/pip install -q --no-index --no-deps --disable-pip-version-check "
        f"/root/{wheel.name} && ln -s {VENV}/bin/extsvc {EXTSVC}",
    )


def chroot(root: Path, script: str) -> str:
    done = subprocess.run(
        ["chroot", str(root), "/usr/bin/env", "-i", f"PATH={PATH}", "HOME=/root",
         "/bin/sh", "-c", script],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RigError(f"in the image: {script}: {done.returncode}\n{done.stderr[-3000:]}")
    return done.stdout


@contextlib.contextmanager
def boot(
    workdir: Path,
    services: dict[str, str],
    unit_options: tuple[str, ...] = (),
    log: Callable[[str], None] = print,
    release: str = STABLE,
) -> Iterator[Machine]:
    """A machine booted with ``services`` (name -> YAML) compiled into OUT and the unit
    `extsvc systemd-unit OUT *unit_options` enabled; closed (everything removed) after.
    ``release``: where its packages (systemd) come from, STABLE or BACKPORTS."""
    reason = missing()
    if reason is not None:
        raise RigError(reason)
    tree = image(log=log, release=release)
    wheel = build_wheel(workdir / "wheel")
    name = f"extsvc-rig-{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    root = home / "root"
    directories: list[Path] = []
    machine: Machine | None = None
    try:
        # The cached image stays as it is: the machine writes to an overlay's upper dir
        # (a copy of 300 MB took 10-40 s and as long to remove, on a loaded host).
        for sub in ("upper", "work", "root"):
            (home / sub).mkdir()
        layers = f"lowerdir={tree},upperdir={home / 'upper'},workdir={home / 'work'}"
        _run(["mount", "-t", "overlay", "overlay", "-o", layers, str(root)])
        prepare_root(root, wheel)
        for service, document in services.items():
            (root / str(SOURCE).lstrip("/")).mkdir(parents=True, exist_ok=True)
            (root / str(SOURCE).lstrip("/") / f"{service}.yaml").write_text(document)
            make_busybox_rootfs(root / str(ROOTFS_BASE).lstrip("/") / service)
        # The unit is written by the installed extsvc, as a user would, and enabled before
        # the boot: the executor starts at boot.
        chroot(root, f"{EXTSVC} compile {SOURCE} -o {OUT}")
        unit = chroot(root, " ".join([str(EXTSVC), "systemd-unit", str(OUT), *unit_options]))
        (root / "etc/systemd/system" / UNIT).write_text(unit)
        chroot(root, f"systemctl enable {UNIT}")
        directories = make_cgroups(name)
        console = workdir / f"{name}.console"
        with console.open("wb") as output:
            process = subprocess.Popen(
                ["systemd-nspawn", "--boot", "-D", str(root), "-M", name[:64],
                 "--register=no", "--keep-unit", "--console=passive", "--private-network",
                 "--capability=all", "--system-call-filter=@keyring"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                preexec_fn=join(directories), start_new_session=True,
            )  # fmt: skip
        machine = Machine(name, root, process, console, directories)
        machine.leader = _wait_leader(machine)
        _wait_booted(machine)
        yield machine
    finally:
        if machine is not None:
            machine.close()
        else:
            teardown(root, directories)


def _wait_leader(machine: Machine, timeout: float = 60) -> int:
    """The host PID of the machine's PID 1 (NSpid ends with 1), below nspawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if machine.process.poll() is not None:
            raise RigError(f"systemd-nspawn exited {machine.process.returncode}: "
                           f"{machine.console.read_text(errors='replace')[-3000:]}")  # fmt: skip
        for pid in cgroup_processes(machine.cgroup_dirs):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("NSpid:") and line.split()[1:] == [str(pid), "1"]:
                        return pid
        time.sleep(0.1)
    raise RigError("the machine's systemd did not start")


def _wait_booted(machine: Machine, timeout: float = 180) -> None:
    """Until systemd has finished starting up (running, or degraded: shown). Before its
    bus is up systemctl answers "offline" at once, so it is asked again."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        done = machine.run("systemctl", "is-system-running", "--wait", check=False,
                           timeout=max(deadline - time.monotonic(), 1))  # fmt: skip
        state = done.stdout.strip()
        if state in ("running", "degraded"):
            return
        if state not in ("offline", "initializing", "starting", ""):
            break
        time.sleep(0.2)
    raise RigError(f"the machine did not boot: {state!r}\n{machine.diagnosis()}")
