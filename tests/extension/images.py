"""Extension images for the tests, built here (no registry): trees, crafted layers, the
four kinds of SOURCE, and a snapshot of a root to prove nothing else changed."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

from extsvc.extension import imagebuild

KINDS = ("oci-layout", "oci-archive", "docker-archive", "directory")


def manifest_yaml(name: str = "hello", version: str = "1.0.0", extra: str = "") -> str:
    return (
        "version: v1alpha1\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  version: {version}\n"
        "  author: extsvc tests\n"
        "  description: an extension built by the tests\n"
        "  compatibility:\n"
        "    talos:\n"
        "      version: '>= v1.5.0'\n" + extra
    )


def make_tree(tree: Path, files: dict[str, str], manifest: str | None = None) -> Path:
    """An image tree: manifest.yaml and rootfs/<path> for each file (path -> text)."""
    (tree / "rootfs").mkdir(parents=True, exist_ok=True)
    (tree / "manifest.yaml").write_text(manifest if manifest is not None else manifest_yaml())
    for path, text in files.items():
        target = tree / "rootfs" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tree


def source_of(kind: str, tree: Path, out: Path, **image: object) -> str:
    """``tree`` as a SOURCE of ``kind``, written under ``out``."""
    if kind == "directory":
        return str(tree)
    layer = imagebuild.layer_from_tree(tree)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "oci-layout":
        return str(imagebuild.write_layout(out / "layout", [layer], **image))  # type: ignore[arg-type]
    if kind == "oci-archive":
        return str(imagebuild.write_oci_archive(out / "image.oci.tar", [layer], **image))  # type: ignore[arg-type]
    return str(imagebuild.write_docker_archive(out / "image.docker.tar", [layer]))


# -- crafted layers: one member at a time ------------------------------------------------

Adder = Callable[[tarfile.TarFile], None]


def crafted(*adders: Adder) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for add in adders:
            add(archive)
    return buffer.getvalue()


def member(
    name: str,
    data: bytes = b"",
    *,
    type: bytes = tarfile.REGTYPE,
    mode: int = 0o644,
    linkname: str = "",
    mtime: int = 1_700_000_000,
) -> Adder:
    def add(archive: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.linkname, info.mtime = type, mode, linkname, mtime
        if type == tarfile.REGTYPE:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        else:
            archive.addfile(info)

    return add


def directory(name: str, mode: int = 0o755) -> Adder:
    return member(name, type=tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> Adder:
    return member(name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Adder:
    return member(name, type=tarfile.LNKTYPE, linkname=target)


def base_layer(name: str = "hello") -> bytes:
    """A valid first layer: the manifest and an empty /usr/local."""
    return crafted(
        member("manifest.yaml", manifest_yaml(name).encode()),
        directory("rootfs"),
        directory("rootfs/usr"),
        directory("rootfs/usr/local"),
    )


# -- what a root holds, to compare before and after ---------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``root`` with its mode, size and (for links) target."""
    seen: dict[str, tuple[int, int, str]] = {}
    for directory_, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = os.path.join(directory_, name)
            info = os.lstat(path)
            target = os.readlink(path) if os.path.islink(path) else ""
            seen[os.path.relpath(path, root)] = (info.st_mode, info.st_size, target)
    return seen
