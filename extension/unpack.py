"""Unpack an image into a private staging directory: carry out the planner's actions.

Every path comes from ``members.Planner``, which has checked it against the index of
what is already staged: nothing here looks up or follows a link. Files are created
with ``O_EXCL|O_NOFOLLOW`` after whatever was at their name is removed (so a hard link
of an earlier layer is never written through). Directories are made 0700 while the
layers are applied and get their own mode, owner and mtime at the end (a 0555
directory must still take its files; a file added changes its directory's mtime).
Ownership is applied when running as root; setuid/setgid never reaches here.

The staging directory is thrown away by the caller on any error, so a refused image
leaves nothing behind; the digests are checked at the end of each layer, before the
caller moves anything into the root.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from extsvc.extension.errors import ExtensionError
from extsvc.extension.members import (
    MANIFEST_MAX_BYTES,
    Action,
    Kind,
    MakeDir,
    MakeHardlink,
    MakeSymlink,
    Member,
    MemberError,
    Planner,
    ReadManifest,
    Remove,
    TreeIndex,
    WriteFile,
)
from extsvc.extension.sources import Image, directory_members
from extsvc.extension.streams import CHUNK, BlobReader, Budget, LayerReader, Limits

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


class MemberData:
    """A member's bytes: ``open`` for the manifest, ``copy_into`` for a file's data."""

    def open(self) -> BinaryIO:
        raise NotImplementedError

    def copy_into(self, fd: int) -> None:
        with self.open() as source:
            while chunk := source.read(CHUNK):
                _write_all(fd, chunk)


class _FileData(MemberData):
    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> BinaryIO:
        return self.path.open("rb")


class _TarData(MemberData):
    def __init__(
        self, archive: tarfile.TarFile, info: tarfile.TarInfo, reader: LayerReader
    ) -> None:
        self.archive, self.info, self.reader = archive, info, reader

    def open(self) -> BinaryIO:
        stream = self.archive.extractfile(self.info)
        assert stream is not None
        return stream  # type: ignore[return-value]

    def copy_into(self, fd: int) -> None:
        if self.info.sparse is not None:  # tarfile knows where the holes are
            super().copy_into(fd)
            return
        # Straight from the layer's buffer: no copy through tarfile's file objects.
        self.reader.seek(self.info.offset_data)
        self.reader.copy_into(fd, self.info.size)
        if self.reader.tell() != self.info.offset_data + self.info.size:
            raise tarfile.ReadError(f"{self.info.name!r}: the layer ends inside its data")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class Unpacked:
    index: TreeIndex
    manifest: bytes | None


@dataclass
class _Writer:
    root: Path  # the staging tree: image paths (rootfs/...) are relative to it
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    # Directory -> the member that described it last (None: made as a parent).
    directories: dict[str, Member | None] = field(default_factory=dict)
    manifest: bytes | None = None

    def apply(self, action: Action, data: MemberData | None) -> None:
        target = (
            os.path.join(self.root, action.path) if not isinstance(action, ReadManifest) else ""
        )
        if isinstance(action, Remove):
            self._remove(action, target)
        elif isinstance(action, MakeDir):
            if not action.exists:
                os.mkdir(target, 0o700)
            self.directories[action.path] = action.member
        elif isinstance(action, WriteFile):
            assert data is not None
            self._write(target, action.member, data)
        elif isinstance(action, MakeSymlink):
            member = action.member
            os.symlink(member.linkname, target)
            if self.as_root:
                os.chown(target, member.uid, member.gid, follow_symlinks=False)
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        elif isinstance(action, MakeHardlink):
            os.link(os.path.join(self.root, action.source), target, follow_symlinks=False)
        else:
            assert data is not None
            with data.open() as stream:
                self.manifest = stream.read(MANIFEST_MAX_BYTES + 1)

    def _remove(self, action: Remove, target: str) -> None:
        if action.is_dir:
            shutil.rmtree(target)
            prefix = action.path + "/"
            for path in [p for p in self.directories if p == action.path or p.startswith(prefix)]:
                del self.directories[path]
        else:
            os.unlink(target)

    def _write(self, target: str, member: Member, data: MemberData) -> None:
        fd = os.open(target, _CREATE, 0o600)
        try:
            data.copy_into(fd)
            if self.as_root:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def finish(self) -> None:
        """Each directory's own mode, owner and mtime, deepest first."""
        for path in sorted(self.directories, key=lambda p: p.count("/"), reverse=True):
            member = self.directories[path]
            target = os.path.join(self.root, path)
            if member is None:
                os.chmod(target, 0o755)
                continue
            if self.as_root:
                os.chown(target, member.uid, member.gid)
            os.chmod(target, member.mode)
            os.utime(target, (member.mtime, member.mtime))


def member_of(info: tarfile.TarInfo) -> Member:
    if info.isdir():
        kind = Kind.DIR
    elif info.issym():
        kind = Kind.SYMLINK
    elif info.islnk():
        kind = Kind.HARDLINK
    elif info.isreg():
        kind = Kind.FILE
    else:
        kind = Kind.SPECIAL
    return Member(
        name=info.name,
        kind=kind,
        mode=info.mode & 0o7777,
        uid=info.uid,
        gid=info.gid,
        mtime=float(info.mtime),
        size=info.size if kind is Kind.FILE else 0,
        linkname=info.linkname,
        special=_SPECIAL.get(info.type, f"tar type {info.type!r}"),
    )


def unpack(image: Image, staging: Path, limits: Limits) -> Unpacked:
    """Apply ``image`` into the empty directory ``staging``; raises ExtensionError."""
    planner = Planner(limits.max_bytes)
    writer = _Writer(staging)
    try:
        if image.directory is not None:
            _unpack_directory(image, planner, writer)
        else:
            budget = Budget(limits)
            for number, layer in enumerate(image.layers, 1):
                shown = (layer.digest or layer.diff_id or layer.location)[:19]
                _unpack_layer(
                    image,
                    number,
                    f"{image.source}: layer {number} ({shown})",
                    planner,
                    writer,
                    budget,
                )
        writer.finish()
    except OSError as error:
        raise ExtensionError(f"{image.source}: cannot unpack: {error}") from None
    return Unpacked(planner.index, writer.manifest)


def _unpack_directory(image: Image, planner: Planner, writer: _Writer) -> None:
    assert image.directory is not None
    for member, data_path in directory_members(image.directory):
        try:
            actions = planner.plan(member, 0)
        except MemberError as error:
            raise ExtensionError(f"{image.source}: {error}") from None
        data = _FileData(data_path) if data_path is not None else None
        for action in actions:
            writer.apply(action, data)


def _unpack_layer(
    image: Image, number: int, what: str, planner: Planner, writer: _Writer, budget: Budget
) -> None:
    layer = image.layers[number - 1]
    with image.open_layer(layer) as raw:
        blob = BlobReader(raw, what, layer.digest, layer.size)
        reader = LayerReader(blob, layer.compression, layer.diff_id, budget)
        try:
            _apply_tar(reader, number, planner, writer)
            reader.finish()
        except (MemberError, tarfile.TarError, ExtensionError, OSError) as error:
            # A blob that is not what its manifest says explains any other problem in
            # it (a garbled stream, a strange member): that is the one to report.
            reader.check_blob()
            if isinstance(error, ExtensionError | OSError):
                raise
            problem = f"not a valid tar ({error})" if isinstance(error, tarfile.TarError) else error
            raise ExtensionError(f"{what}: {problem}") from None
        finally:
            reader.stop()


def _apply_tar(reader: LayerReader, number: int, planner: Planner, writer: _Writer) -> None:
    # Read once, front to back, as it is hashed (the reader seeks forward only).
    archive = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
    for info in archive:
        actions = planner.plan(member_of(info), number)
        data = _TarData(archive, info, reader)
        for action in actions:
            writer.apply(action, data)
    archive.members = []  # what tarfile keeps of each member is not needed
