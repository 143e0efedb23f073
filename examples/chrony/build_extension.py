"""Build a Talos-style system extension image of chrony from Debian's packages.

    python examples/chrony/build_extension.py OUT [--name chrony] [--cache DIR]
        [--set-clock] [--layout DIR]

What it writes, in the shape Talos's extension images have (siderolabs/extensions):

    OUT/manifest.yaml                                    v1alpha1 metadata
    OUT/rootfs/usr/local/etc/containers/NAME.yaml        the service file
    OUT/rootfs/usr/local/lib/containers/NAME/...         chronyd, chronyc, their
                                                         libraries, config, passwd

and, with ``--layout DIR``, the same tree as an OCI image layout at DIR (one layer, no
registry; what ``skopeo copy docker://… oci:DIR`` would write), which ``extsvc
extension install DIR`` takes like any other image. OUT itself, a plain directory,
installs as well.

The packages are fetched with ``apt-get download`` (never installed on this
host) into a cache outside the repository (``--cache``, default
``~/.cache/extsvc/debs``), so a second build needs no network at all.

Which libraries go in: the ELF files' DT_NEEDED entries (and PT_INTERP, the
dynamic loader), read here from the files themselves and resolved, recursively,
against the extracted library packages. Not ``ldd``: ldd runs the binary's
loader on this host, resolves against *this host's* libraries (which need not
be the ones the image gets, or exist at all) and executes code from a package
we have not installed; reading DT_NEEDED is static and resolves against exactly
the files the image will hold. The library packages are the daemon package's
``Depends`` followed through every ``lib*`` package (their own Depends);
a soname no package provides stops the build with its name.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "chrony"
# The programs the image carries (paths inside the package).
PROGRAMS = ("usr/sbin/chronyd", "usr/bin/chronyc")
# chronyd drops root to this user. The number is fixed in the image so that the host
# side (x-extsvc mountSources) can own the daemon's state directory by number: there
# is no user namespace, the container's uid is the host's.
CHRONY_USER = "_chrony"
CHRONY_UID = 330
CHRONY_GID = 330
HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "extsvc" / "debs"

# ELF constants (elf(5)).
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


class BuildError(Exception):
    """Something the user can act on: printed as one line, exit 1."""


# ----- ELF: what a program needs, read from the file


def elf_needs(path: Path) -> tuple[str | None, list[str]]:
    """(PT_INTERP path or None, DT_NEEDED sonames) of a 64-bit little-endian ELF file
    (amd64, arm64: the arches a plan is compiled for); ([], None) for anything else."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None, []
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    headers = [
        struct.unpack_from("<IIQQQQQQ", data, phoff + index * phentsize) for index in range(phnum)
    ]
    interpreter = None
    loads = []
    dynamic: tuple[int, int] | None = None
    for p_type, _flags, offset, vaddr, _paddr, filesz, _memsz, _align in headers:
        if p_type == PT_INTERP:
            interpreter = data[offset : offset + filesz].split(b"\0", 1)[0].decode()
        elif p_type == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return interpreter, []  # static
    entries = []
    for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, position)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    strtab_vaddr = next(value for tag, value in entries if tag == DT_STRTAB)
    # DT_STRTAB is an address: the PT_LOAD segment holding it says where it is in the file.
    strtab = next(
        offset + strtab_vaddr - vaddr
        for vaddr, offset, filesz in loads
        if vaddr <= strtab_vaddr < vaddr + filesz
    )
    needed = []
    for tag, value in entries:
        if tag == DT_NEEDED:
            end = data.index(b"\0", strtab + value)
            needed.append(data[strtab + value : end].decode())
    return interpreter, needed


# ----- Debian packages


def candidates(packages: list[str]) -> dict[str, str]:
    """package -> the version apt-get download would fetch now (apt's own lists, no
    network): a cache holding an older point release is not used for it."""
    result = subprocess.run(
        ["apt-cache", "policy", *packages], capture_output=True, text=True, check=False
    )
    versions: dict[str, str] = {}
    package = None
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            package = line.rstrip(":")
        elif line.strip().startswith("Candidate:") and package is not None:
            versions[package] = line.split(":", 1)[1].strip()
    return versions


def download(packages: Iterable[str], cache: Path) -> dict[str, Path]:
    """package -> its .deb in ``cache``, fetched with apt-get download when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    packages = list(packages)
    if not packages:
        return {}
    versions = candidates(packages)
    found: dict[str, Path] = {}
    missing = []
    for package in packages:
        # apt-get download's file name: the epoch's ":" written "%3a".
        version = versions.get(package, "*").replace(":", "%3a")
        debs = sorted(cache.glob(f"{package}_{version}_*.deb"))
        if debs:
            found[package] = debs[-1]
        else:
            missing.append(package)
    if missing:
        # As root, apt's download sandbox user (_apt) cannot write an arbitrary cache.
        result = subprocess.run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *missing],
            cwd=cache,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()[-1:] or ["(no message)"]
            raise BuildError(
                f"apt-get download {' '.join(missing)} failed: {detail[0]} "
                "(run `apt-get update` first; Debian's mirror must be reachable)"
            )
        for package in missing:
            version = versions.get(package, "*").replace(":", "%3a")
            debs = sorted(cache.glob(f"{package}_{version}_*.deb"))
            if not debs:
                raise BuildError(f"apt-get download {package} wrote no .deb into {cache}")
            found[package] = debs[-1]
    return found


def deb_field(deb: Path, field: str) -> str:
    result = subprocess.run(
        ["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def depends_of(deb: Path) -> list[str]:
    """Package names of a .deb's Depends and Pre-Depends (first of each alternative)."""
    names = []
    for field in ("Pre-Depends", "Depends"):
        for item in deb_field(deb, field).split(","):
            name = item.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                names.append(name)
    return names


def library_closure(deb: Path, cache: Path) -> dict[str, Path]:
    """Every lib* package reachable from ``deb``'s Depends through lib* packages."""
    debs: dict[str, Path] = {}
    pending = [name for name in depends_of(deb) if name.startswith("lib")]
    while pending:
        fetched = download(sorted(set(pending) - set(debs)), cache)
        debs.update(fetched)
        pending = [
            name
            for fetched_deb in fetched.values()
            for name in depends_of(fetched_deb)
            if name.startswith("lib") and name not in debs
        ]
    return debs


def extract(deb: Path, into: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)


# ----- the image


def _resolve_in(tree: Path, path: str) -> Path:
    """``path`` (absolute, as the loader sees it) inside ``tree``, its symlinks followed
    inside ``tree`` (never out of it)."""
    current = tree / path.lstrip("/")
    for _ in range(40):
        if not current.is_symlink():
            return current
        target = os.readlink(current)
        # An absolute target is the image's own path, not this host's.
        base = tree if target.startswith("/") else current.parent
        current = base / target.lstrip("/")
    raise BuildError(f"{path}: too many symbolic links")


def _soname_index(tree: Path) -> dict[str, str]:
    """soname -> path (absolute, inside the image) of each shared library in ``tree``."""
    index: dict[str, str] = {}
    for directory in ("lib", "usr/lib"):
        for path in sorted((tree / directory).rglob("*.so*")):
            if path.is_file() or path.is_symlink():
                index.setdefault(path.name, "/" + str(path.relative_to(tree)))
    return index


def libraries_needed(tree: Path, programs: Iterable[str]) -> list[str]:
    """Every file (absolute path inside the image) the programs need to load: the
    loader and the DT_NEEDED closure, resolved against ``tree``."""
    index = _soname_index(tree)
    needed: dict[str, None] = {}
    queue = [_resolve_in(tree, program) for program in programs]
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        interpreter, sonames = elf_needs(path)
        if interpreter is not None:
            needed[interpreter] = None
            queue.append(_resolve_in(tree, interpreter))
        for soname in sonames:
            if soname not in index:
                raise BuildError(
                    f"{path.name} needs {soname}, which no extracted library package provides"
                )
            needed[index[soname]] = None
            queue.append(_resolve_in(tree, index[soname]))
    return sorted(needed)


def _copy(tree: Path, path: str, root: Path) -> None:
    """Copy ``path`` from ``tree`` to the same path under ``root`` as a regular file
    (the image needs the soname, not the package's chain of symlinks)."""
    destination = root / path.lstrip("/")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_resolve_in(tree, path), destination)


SERVICE = """\
name: {name}
container:
  entrypoint: /usr/sbin/chronyd
  args:
    # -d: stay in the foreground and log to stderr (the service's log); without it
    # chronyd forks and the container's init exits at once.
    - -d
{clock}    - -u
    - {user}
    - -f
    - /etc/chrony/chrony.conf
  mounts:
    # chronyd's drift file: kept across restarts (the rootfs is read-only).
    - source: /var/lib/{name}
      destination: /var/lib/chrony
      type: bind
      options:
        - bind
        - rw
restart: always
x-extsvc:
  # chronyd drops root: the executor creates /var/lib/{name} owned by its user.
  mountSources:
    - path: /var/lib/{name}
      owner: {{uid: {uid}, gid: {gid}}}
      mode: "0750"
  # What chronyd uses before and after it drops root (its run directory, its user,
  # the NTP port); with clock control, also CAP_SYS_TIME.
  capabilities: [{capabilities}]
  health:
    # chronyc talks through /run/chrony/chronyd.sock, in a directory only chronyd's
    # user may enter: root in `runc exec`, without CAP_DAC_OVERRIDE, cannot.
    exec: [/usr/bin/chronyc, -n, tracking]
    user: {{uid: {uid}, gid: {gid}}}
    interval: 2s
    timeout: 5s
    retries: 3
"""

NO_CLOCK = """\
    # -x: never set the system clock (answer, serve time, track nothing more).
    - -x
"""

CHRONY_CONF = """\
# No time source: the image must run where nothing is reachable. A real node adds
# `pool 2.debian.pool.ntp.org iburst` (and the capability to set the clock).
driftfile /var/lib/chrony/chrony.drift
# The command socket only (no UDP port 323): chronyc talks through
# /run/chrony/chronyd.sock, whose directory only chronyd's user may enter.
cmdport 0
# Written by root before chronyd drops it: in /run itself, not in /run/chrony (which
# belongs to chronyd's user, and root holds no CAP_DAC_OVERRIDE here). At its stop
# chronyd, no longer root, cannot remove it and says so; /run is the container's tmpfs.
pidfile /run/chronyd.pid
"""

MANIFEST = """\
version: v1alpha1
metadata:
  name: {name}
  version: "{version}"
  author: extsvc examples (from Debian's {package} {deb_version})
  description: |
    chrony's chronyd as an extension service: the daemon and chronyc, with the
    shared libraries they load, from Debian's packages.
  compatibility:
    talos:
      version: ">= v1.7.0"
"""


def write_layout(image: Path, layout: Path, tag: str) -> None:
    """``image`` (manifest.yaml + rootfs/) as a one-layer OCI image layout at ``layout``,
    with the project's own image writer (what the install tests build with too)."""
    from extsvc.extension import imagebuild

    if layout.exists():
        raise BuildError(f"{layout} exists: give a new directory")
    imagebuild.write_layout(layout, [imagebuild.layer_from_tree(image)], tag=tag)


def build(out: Path, name: str, cache: Path, set_clock: bool) -> str:
    """Build the image directory ``out``; returns its version."""
    if out.exists():
        raise BuildError(f"{out} exists: give a new directory")
    chrony = download([PACKAGE], cache)[PACKAGE]
    libraries = library_closure(chrony, cache)
    with tempfile.TemporaryDirectory(prefix="chrony-extension-") as temporary:
        tree = Path(temporary) / "tree"
        for deb in [chrony, *libraries.values()]:
            extract(deb, tree)
        staging = Path(temporary) / "image"
        root = staging / "rootfs" / "usr" / "local" / "lib" / "containers" / name
        for path in [*PROGRAMS, *libraries_needed(tree, PROGRAMS)]:
            _copy(tree, path, root)
        _write_rootfs_files(root)
        containers = staging / "rootfs" / "usr" / "local" / "etc" / "containers"
        containers.mkdir(parents=True)
        capabilities = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID"]
        capabilities += ["CAP_SYS_TIME"] if set_clock else []
        (containers / f"{name}.yaml").write_text(
            SERVICE.format(
                name=name,
                clock="" if set_clock else NO_CLOCK,
                user=CHRONY_USER,
                uid=CHRONY_UID,
                gid=CHRONY_GID,
                capabilities=", ".join(capabilities),
            )
        )
        deb_version = deb_field(chrony, "Version")
        (staging / "manifest.yaml").write_text(
            MANIFEST.format(
                name=name,
                version=deb_version.split("-")[0],
                package=PACKAGE,
                deb_version=deb_version,
            )
        )
        # Modes as Talos wants them (nothing world-writable) whatever the umask was.
        for path in staging.rglob("*"):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o022)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), out)
    return deb_version.split("-")[0]


def _write_rootfs_files(root: Path) -> None:
    etc = root / "etc"
    (etc / "chrony").mkdir(parents=True, exist_ok=True)
    (etc / "chrony" / "chrony.conf").write_text(CHRONY_CONF)
    # getpwnam("_chrony") reads these (glibc's files NSS module is inside libc.so.6).
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/sbin/nologin\n"
        f"{CHRONY_USER}:x:{CHRONY_UID}:{CHRONY_GID}:chrony:/var/lib/chrony:/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{CHRONY_USER}:x:{CHRONY_GID}:\n")
    # Mount points: the rootfs is read-only, runc cannot create them at start.
    for directory in ("var/lib/chrony", "run", "proc", "sys", "dev", "tmp"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for file in ("etc/hosts", "etc/resolv.conf"):
        (root / file).touch()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the image directory to create")
    parser.add_argument("--name", default=PACKAGE, help="extension and service name")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where .debs are kept")
    parser.add_argument(
        "--set-clock", action="store_true", help="let chronyd set the clock (no -x)"
    )
    parser.add_argument("--layout", type=Path, help="also write an OCI image layout here")
    arguments = parser.parse_args(argv)
    try:
        version = build(arguments.out, arguments.name, arguments.cache, arguments.set_clock)
        print(f"{arguments.out}: {arguments.name} {version} (manifest.yaml, rootfs/)")
        if arguments.layout is not None:
            write_layout(arguments.out, arguments.layout, version)
            print(f"{arguments.layout}: the same as an OCI image layout")
    except (BuildError, subprocess.CalledProcessError, OSError) as error:
        print(f"build_extension: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
