"""Each member of an image's layers, checked and turned into actions (pure).

The layers are applied, in order, into a private staging directory that starts empty,
so everything in it was put there by these actions: the ``TreeIndex`` knows what each
path is, and every decision is taken on the index, never by looking at (or following)
anything on disk. That is what keeps a hostile image inside the staging directory:

* a member name is relative, with no ``..``: an absolute or climbing name is refused;
* every directory a member goes through must be a directory *of the index*: a name
  through a symlink (one from an earlier layer included) is refused, never followed;
* a hard link must name a regular file already in the index;
* a whiteout removes only what earlier layers put in the index, and its name obeys the
  same rules, so it cannot aim outside either.

On top, Talos's own rules on an extension's rootfs (``validateContents`` in
``pkg/machinery/extensions``): no special files (devices, FIFOs, sockets), nothing
world-writable (a sticky directory, a container's /tmp, excepted), and every
non-directory under one of the allowed path prefixes. extsvc also refuses setuid and
setgid files, which Talos does not check.

OCI image-spec layer rules: ``.wh.NAME`` removes NAME of the layers below, an opaque
``.wh..wh..opq`` empties its directory of what the layers below put there; other
``.wh..wh.`` names (aufs bookkeeping) are skipped; a member replacing an existing path
replaces it whole, except a directory over a directory, which only takes the new
metadata.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from extsvc.extension.manifest import MANIFEST_FILE

ROOTFS = "rootfs"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
WHITEOUT_META = ".wh..wh."

# Talos's AllowedPaths (pkg/machinery/extensions/extensions.go, the 1.9-1.10 list).
ALLOWED_PREFIXES = (
    "/etc/cri/conf.d",
    "/lib/firmware",
    "/lib/modules",
    "/lib64/ld-linux-x86-64.so.2",
    "/sbin/ldconfig",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
)
MAX_NAME_BYTES = 4096
# Members of all layers together: the index holds each one (a layer of empty files is a
# cheap way to exhaust memory otherwise).
MAX_MEMBERS = 1_000_000
MANIFEST_MAX_BYTES = 1024 * 1024


class Kind(enum.Enum):
    DIR = "directory"
    FILE = "file"
    SYMLINK = "symlink"
    HARDLINK = "hard link"
    # Anything else a tar can hold: refused, the member says which one.
    SPECIAL = "special"


@dataclass(frozen=True)
class Member:
    """One tar member, as much of it as the rules need (unpack builds it from a TarInfo)."""

    name: str
    kind: Kind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = 0.0
    size: int = 0
    linkname: str = ""
    # For SPECIAL: what it is ("a character device", "a FIFO", ...).
    special: str = ""


class MemberError(Exception):
    """A member that is refused; the message names it."""


# -- actions: what unpack does, relative to the staging directory --------------------------


@dataclass(frozen=True)
class Remove:
    path: str
    is_dir: bool


@dataclass(frozen=True)
class MakeDir:
    path: str
    member: Member | None  # None: a parent no member named (0755, root, no mtime)
    exists: bool = False  # only the metadata changes


@dataclass(frozen=True)
class WriteFile:
    path: str
    member: Member


@dataclass(frozen=True)
class MakeSymlink:
    path: str
    member: Member


@dataclass(frozen=True)
class MakeHardlink:
    path: str
    source: str


@dataclass(frozen=True)
class ReadManifest:
    member: Member


Action = Remove | MakeDir | WriteFile | MakeSymlink | MakeHardlink | ReadManifest


@dataclass
class _Node:
    kind: Kind  # DIR, FILE or SYMLINK (a hard link is a FILE)
    layer: int


@dataclass
class TreeIndex:
    """What the staging tree holds, path (``rootfs/usr/local/...``) -> node."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=lambda: {"": set()})
    declared_bytes: int = 0

    def kind(self, path: str) -> Kind | None:
        node = self.nodes.get(path)
        return node.kind if node else None

    def add(self, path: str, kind: Kind, layer: int) -> None:
        parent, _, _ = path.rpartition("/")
        self.children[parent].add(path)
        self.nodes[path] = _Node(kind, layer)
        if kind is Kind.DIR:
            self.children.setdefault(path, set())

    def discard(self, path: str) -> None:
        """Forget ``path`` and, for a directory, everything under it."""
        node = self.nodes.pop(path, None)
        if node is None:
            return
        parent, _, _ = path.rpartition("/")
        self.children[parent].discard(path)
        for child in list(self.children.pop(path, ())):
            self._forget(child)

    def _forget(self, path: str) -> None:
        self.nodes.pop(path, None)
        for child in self.children.pop(path, ()):
            self._forget(child)

    def below(self, directory: str, layer: int) -> list[str]:
        """Children of ``directory`` that layers before ``layer`` put there."""
        return sorted(c for c in self.children.get(directory, ()) if self.nodes[c].layer < layer)

    def walk(self) -> Iterator[tuple[str, Kind]]:
        """Every path, each directory before what it holds."""
        for path in sorted(self.nodes):
            yield path, self.nodes[path].kind


def normalize(name: str) -> str:
    """A member name as a clean relative path; refuses absolute and climbing names."""
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise MemberError(f"{_shown(name)}: name longer than {MAX_NAME_BYTES} bytes")
    if name.startswith("/"):
        raise MemberError(f"{_shown(name)}: absolute member name (it would land outside the root)")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise MemberError(f"{_shown(name)}: member name climbs out with '..'")
    return "/".join(parts)


def _shown(name: str) -> str:
    return repr(name if len(name) <= 200 else name[:197] + "...")


def rootfs_path(path: str) -> str:
    """``rootfs/usr/local/x`` -> ``/usr/local/x`` (where it lands, relative to --root)."""
    return "/" + path.removeprefix(ROOTFS).lstrip("/")


def allowed(path: str) -> bool:
    """Whether a non-directory at ``path`` (``/usr/local/...``) may ship (whole components:
    Talos compares strings, so it also lets ``/usr/localfoo`` through; extsvc does not)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in ALLOWED_PREFIXES)


class Planner:
    """Turns the members of the layers, in order, into actions, keeping the index."""

    def __init__(self, max_bytes: int) -> None:
        self.index = TreeIndex()
        self.max_bytes = max_bytes
        self.members = 0

    def plan(self, member: Member, layer: int) -> list[Action]:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise MemberError(f"more than {MAX_MEMBERS} members in the image's layers")
        path = normalize(member.name)
        if not path:
            return []  # "./" itself: the image's root
        parent, _, base = path.rpartition("/")
        actions = self._parents(parent, member.name, layer)
        if base.startswith(WHITEOUT):
            return actions + self._whiteout(parent, base, member, layer)
        if not parent:
            self._check_top(base, member)
            if base == MANIFEST_FILE:
                return [ReadManifest(member)]
        else:
            self._check_rootfs(path, member)
        return actions + self._place(path, member, layer)

    def _parents(self, parent: str, name: str, layer: int) -> list[Action]:
        """Make the missing directories above a member; refuse a name through a non-directory."""
        if not parent:
            return []
        actions: list[Action] = []
        parts = parent.split("/")
        if parts[0] != ROOTFS:
            raise MemberError(f"{_shown(name)}: {_top_rule(parts[0])}")
        for depth in range(1, len(parts) + 1):
            ancestor = "/".join(parts[:depth])
            kind = self.index.kind(ancestor)
            if kind is Kind.DIR:
                continue
            if kind is not None:
                raise MemberError(
                    f"{_shown(name)}: goes through {ancestor!r}, a {kind.value} of the image "
                    "(extsvc never writes through a link)"
                )
            self.index.add(ancestor, Kind.DIR, layer)
            actions.append(MakeDir(ancestor, None))
        return actions

    def _whiteout(self, parent: str, base: str, member: Member, layer: int) -> list[Action]:
        if base == OPAQUE:
            if not parent:
                raise MemberError(f"{_shown(member.name)}: an opaque whiteout at the image's top")
            removed = self.index.below(parent, layer)
        elif base.startswith(WHITEOUT_META):
            return []
        else:
            target = f"{parent}/{base[len(WHITEOUT) :]}" if parent else base[len(WHITEOUT) :]
            normalize(target)  # ".wh.." would name the parent: refused like any ".."
            if target.rpartition("/")[2] in ("", ".", ".."):
                raise MemberError(f"{_shown(member.name)}: a whiteout of {target!r}")
            node = self.index.nodes.get(target)
            removed = [target] if node is not None and node.layer < layer else []
        actions: list[Action] = []
        for path in removed:
            actions.append(Remove(path, self.index.kind(path) is Kind.DIR))
            self.index.discard(path)
        return actions

    def _place(self, path: str, member: Member, layer: int) -> list[Action]:
        existing = self.index.kind(path)
        if member.kind is Kind.DIR and existing is Kind.DIR:
            self.index.nodes[path].layer = layer
            return [MakeDir(path, member, exists=True)]
        actions: list[Action] = []
        if existing is not None:
            actions.append(Remove(path, existing is Kind.DIR))
            self.index.discard(path)
        if member.kind is Kind.DIR:
            self.index.add(path, Kind.DIR, layer)
            return [*actions, MakeDir(path, member)]
        if member.kind is Kind.SYMLINK:
            self.index.add(path, Kind.SYMLINK, layer)
            return [*actions, MakeSymlink(path, member)]
        if member.kind is Kind.HARDLINK:
            source = self._link_source(member)
            if source == path:
                raise MemberError(f"{_shown(member.name)}: a hard link to itself")
            self.index.add(path, Kind.FILE, layer)
            return [*actions, MakeHardlink(path, source)]
        self.index.declared_bytes += member.size
        if self.index.declared_bytes > self.max_bytes:
            raise MemberError(
                f"{_shown(member.name)}: the image unpacks to more than {self.max_bytes} bytes "
                "(the limit, --max-size)"
            )
        self.index.add(path, Kind.FILE, layer)
        return [*actions, WriteFile(path, member)]

    def _link_source(self, member: Member) -> str:
        if member.linkname.startswith("/"):
            raise MemberError(
                f"{_shown(member.name)}: a hard link to an absolute path "
                f"{_shown(member.linkname)} (outside the image)"
            )
        try:
            source = normalize(member.linkname)
        except MemberError as error:
            raise MemberError(f"{_shown(member.name)}: a hard link to {error}") from None
        if self.index.kind(source) is not Kind.FILE:
            raise MemberError(
                f"{_shown(member.name)}: a hard link to {_shown(member.linkname)}, "
                "which is not a regular file of the image"
            )
        for depth in range(1, source.count("/") + 1):
            # Every directory above the source is in the index as a directory (a file
            # can only be added below directories), so the link follows no symlink.
            assert self.index.kind("/".join(source.split("/")[:depth])) is Kind.DIR
        return source

    def _check_top(self, base: str, member: Member) -> None:
        if base == MANIFEST_FILE:
            if member.kind is not Kind.FILE:
                raise MemberError(f"{MANIFEST_FILE} must be a regular file")
            if member.size > MANIFEST_MAX_BYTES:
                raise MemberError(f"{MANIFEST_FILE} is larger than {MANIFEST_MAX_BYTES} bytes")
        elif base == ROOTFS:
            if member.kind is not Kind.DIR:
                raise MemberError(f"{ROOTFS} must be a directory, not a {member.kind.value}")
        else:
            raise MemberError(f"{_shown(member.name)}: {_top_rule(base)}")

    def _check_rootfs(self, path: str, member: Member) -> None:
        """Talos's rules on the rootfs (validateContents), and setuid/setgid on top."""
        where = rootfs_path(path)
        if member.kind is Kind.SPECIAL:
            raise MemberError(f"{where}: special files are not allowed ({member.special})")
        sticky_directory = member.kind is Kind.DIR and member.mode & 0o1000
        if member.kind is not Kind.SYMLINK and member.mode & 0o002 and not sticky_directory:
            raise MemberError(
                f"{where}: world-writable files are not allowed (mode {member.mode:o})"
            )
        if member.kind in (Kind.FILE, Kind.HARDLINK) and member.mode & 0o6000:
            bits = "setuid" if member.mode & 0o4000 else "setgid"
            raise MemberError(f"{where}: {bits} files are not allowed (mode {member.mode:o})")
        if member.kind is not Kind.DIR and not allowed(where):
            raise MemberError(
                f"{where}: path is not allowed in extensions (Talos allows files only under "
                + ", ".join(ALLOWED_PREFIXES)
                + ")"
            )


def _top_rule(base: str) -> str:
    return (
        f"unexpected {base!r} at the top of the image: an extension image holds "
        f"{MANIFEST_FILE} and {ROOTFS}/ only"
    )
