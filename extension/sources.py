"""Open a SOURCE of ``extsvc extension install``: what kind it is, its layers, its blobs.

``DIR`` or ``DIR:TAG`` is an OCI image layout (``index.json``) or a plain directory
(``manifest.yaml`` and ``rootfs/``); ``FILE`` or ``FILE:TAG`` is an oci-archive (the
layout, tarred) or a docker-archive (``manifest.json``). A file or directory whose name
itself holds a ``:`` is taken whole when it exists.

Small JSON blobs (index, manifests, config) are read whole, bounded, and their digests
checked here; layers are opened as streams and checked while they are unpacked.
"""

from __future__ import annotations

import os
import platform
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from extsvc.extension import oci
from extsvc.extension.errors import ExtensionError
from extsvc.extension.manifest import MANIFEST_FILE
from extsvc.extension.members import ROOTFS, Kind, Member
from extsvc.extension.oci import Descriptor, LayerRef
from extsvc.extension.streams import digest_of

OCI_LAYOUT = "oci-layout"
INDEX = "index.json"
DOCKER_MANIFEST = "manifest.json"


class Store(Protocol):
    def has(self, name: str) -> bool: ...

    def open(self, name: str) -> BinaryIO: ...

    def close(self) -> None: ...


class DirStore:
    """Files of a layout directory; only regular files are read (a FIFO would block)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def open(self, name: str) -> BinaryIO:
        path = self.root / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise ExtensionError(f"{path}: cannot read: {error.strerror or error}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ExtensionError(f"{path}: not a regular file")
        return os.fdopen(fd, "rb", buffering=0)

    def close(self) -> None:
        pass


class TarStore:
    """Members of an archive, read in place (the archive file is seekable)."""

    def __init__(self, path: Path, archive: tarfile.TarFile) -> None:
        self.path = path
        self.archive = archive
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in archive.getmembers():
            name = "/".join(p for p in member.name.split("/") if p not in ("", "."))
            if member.isfile():
                self.members.setdefault(name, member)

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(name)
        stream = self.archive.extractfile(member) if member is not None else None
        if stream is None:
            raise ExtensionError(f"{self.path}: no file {name!r} in the archive")
        return stream  # type: ignore[return-value]

    def close(self) -> None:
        self.archive.close()


@dataclass
class Image:
    """One SOURCE, opened: its layers in order (or, for a plain directory, its tree)."""

    source: str
    kind: str  # "oci-layout", "oci-archive", "docker-archive", "directory"
    digest: str | None  # the manifest's digest (OCI), the config's (docker); None: a directory
    layers: list[LayerRef] = field(default_factory=list)
    store: Store | None = None
    directory: Path | None = None

    def open_layer(self, layer: LayerRef) -> BinaryIO:
        assert self.store is not None
        return self.store.open(
            _blob_name(layer.location) if self.kind != "docker-archive" else layer.location
        )

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _blob_name(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"blobs/{algorithm}/{hex_digest}"


def split_source(source: str) -> tuple[Path, str | None]:
    """``PATH`` or ``PATH:TAG`` -> (path, tag)."""
    path = Path(source)
    if path.exists() or ":" not in source:
        return path, None
    head, _, tag = source.rpartition(":")
    if not tag:
        raise ExtensionError(f"{source}: an empty tag after ':'")
    return Path(head), tag


def open_image(source: str) -> Image:
    path, tag = split_source(source)
    if path.is_dir():
        if (path / INDEX).is_file():
            return _oci_image(source, "oci-layout", DirStore(path), tag)
        if (path / MANIFEST_FILE).exists():
            if tag is not None:
                raise ExtensionError(f"{source}: a plain directory has no tags")
            return Image(source, "directory", None, directory=path)
        raise ExtensionError(
            f"{path}: neither an OCI image layout (no {INDEX}) nor an extension directory "
            f"(no {MANIFEST_FILE})"
        )
    if not path.exists():
        raise ExtensionError(f"{path}: no such file or directory")
    if not path.is_file():
        raise ExtensionError(f"{path}: not a file or a directory")
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - the store closes it
    except (tarfile.TarError, OSError) as error:
        raise ExtensionError(f"{path}: not a tar archive ({error})") from None
    try:
        store = TarStore(path, archive)
    except (tarfile.TarError, OSError, EOFError) as error:
        archive.close()
        raise ExtensionError(f"{path}: cannot read the archive ({error})") from None
    if store.has(INDEX):
        return _oci_image(source, "oci-archive", store, tag)
    if store.has(DOCKER_MANIFEST):
        return _docker_image(source, store, tag)
    store.close()
    raise ExtensionError(
        f"{path}: neither an oci-archive (no {INDEX}) nor a docker-archive (no {DOCKER_MANIFEST})"
    )


def _read_small(store: Store, name: str, what: str, want: Descriptor | None = None) -> Any:
    with store.open(name) as stream:
        data = stream.read(oci.MAX_JSON_BYTES + 1)
    if want is not None and (len(data) != want.size or digest_of(data) != want.digest):
        raise ExtensionError(
            f"{what}: digest mismatch: {want.digest} ({want.size} bytes) expected, "
            f"{digest_of(data)} ({len(data)} bytes) found"
        )
    return oci.load_json(what, data)


def _oci_image(source: str, kind: str, store: Store, tag: str | None) -> Image:
    try:
        index = _read_small(store, INDEX, f"{source}: {INDEX}")
        chosen = oci.pick_from_index(f"{source}: {INDEX}", index, tag)
        for _depth in range(4):  # an index of indexes of indexes is already unusual
            what = f"{source}: {chosen.digest[:19]}"
            if not store.has(_blob_name(chosen.digest)):
                raise ExtensionError(f"{what}: blob missing from the layout")
            document = _read_small(store, _blob_name(chosen.digest), what, chosen)
            if chosen.media_type in oci.INDEX_TYPES or (
                isinstance(document, dict) and "manifests" in document
            ):
                chosen = oci.pick_platform(what, document, platform.machine())
                continue
            break
        else:
            raise ExtensionError(f"{source}: indexes nested too deep")
        config_ref, layer_refs = oci.manifest_layers(what, document)
        config = _read_small(
            store, _blob_name(config_ref.digest), f"{source}: config {config_ref.digest[:19]}",
            config_ref,
        )  # fmt: skip
        ids = oci.diff_ids(f"{source}: config", config, len(layer_refs))
    except BaseException:
        store.close()
        raise
    layers = [
        LayerRef(
            location=ref.digest,
            compression=oci.LAYER_TYPES[ref.media_type],
            digest=ref.digest,
            size=ref.size,
            diff_id=diff_id,
        )
        for ref, diff_id in zip(layer_refs, ids, strict=True)
    ]
    return Image(source, kind, chosen.digest, layers, store)


def _docker_image(source: str, store: Store, tag: str | None) -> Image:
    try:
        manifest = _read_small(store, DOCKER_MANIFEST, f"{source}: {DOCKER_MANIFEST}")
        config_name, layer_names = oci.docker_image(source, manifest, tag)
        config_name = _member(config_name)
        if not store.has(config_name):
            raise ExtensionError(f"{source}: the config {config_name!r} is not in the archive")
        with store.open(config_name) as stream:
            data = stream.read(oci.MAX_JSON_BYTES + 1)
        config = oci.load_json(f"{source}: {config_name}", data)
        ids = oci.diff_ids(f"{source}: {config_name}", config, len(layer_names))
        layers = []
        for name, diff_id in zip(layer_names, ids, strict=True):
            member = _member(name)
            if not store.has(member):
                raise ExtensionError(f"{source}: the layer {name!r} is not in the archive")
            layers.append(LayerRef(member, None, None, None, diff_id))
    except BaseException:
        store.close()
        raise
    return Image(source, "docker-archive", digest_of(data), layers, store)


def _member(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


# -- a plain directory: its tree as members, in the order a tar of it would have ----------


def directory_members(root: Path) -> Iterator[tuple[Member, Path | None]]:
    """Each entry under ``root`` as a Member (a second name of an inode as a hard link),
    with the path to read a regular file's data from."""
    seen: dict[tuple[int, int], str] = {}
    top = sorted(os.listdir(root))
    for name in top:
        yield from _walk(root, name, seen)


def _walk(
    root: Path, name: str, seen: dict[tuple[int, int], str]
) -> Iterator[tuple[Member, Path | None]]:
    path = root / name
    info = os.lstat(path)
    mode = info.st_mode
    common = {
        "name": name,
        "mode": stat.S_IMODE(mode),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mtime": info.st_mtime,
    }
    if stat.S_ISDIR(mode):
        yield Member(kind=Kind.DIR, **common), None  # type: ignore[arg-type]
        for child in sorted(os.listdir(path)):
            yield from _walk(root, f"{name}/{child}", seen)
    elif stat.S_ISLNK(mode):
        yield Member(kind=Kind.SYMLINK, linkname=os.readlink(path), **common), None  # type: ignore[arg-type]
    elif stat.S_ISREG(mode):
        key = (info.st_dev, info.st_ino)
        first = seen.get(key) if info.st_nlink > 1 else None
        if first is not None:
            yield Member(kind=Kind.HARDLINK, linkname=first, **common), None  # type: ignore[arg-type]
        else:
            seen[key] = name
            yield Member(kind=Kind.FILE, size=info.st_size, **common), path  # type: ignore[arg-type]
    else:
        yield Member(kind=Kind.SPECIAL, special=_special(mode), **common), None  # type: ignore[arg-type]


def _special(mode: int) -> str:
    for test, what in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "not a file, directory or symlink"


__all__ = ["ROOTFS", "Image", "directory_members", "open_image"]
