"""Write extension images without a registry: an OCI layout, an oci-archive, a docker-archive.

For the tests and the examples (a project module, so a script that builds an image from
Debian packages uses the same code): a directory tree holding ``manifest.yaml`` and
``rootfs/`` becomes a layer (``layer_from_tree``); layers (tar bytes, any number, crafted
ones too) become an image in the three forms ``extsvc extension install`` reads.

    from extsvc.extension import imagebuild
    layer = imagebuild.layer_from_tree(Path("my-extension"))
    imagebuild.write_layout(Path("out/layout"), [layer], tag="v1.0.0")
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extsvc.extension.oci import OCI_ARCH, REF_NAME

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
SUFFIX = {"": "", "gzip": "+gzip", "zstd": "+zstd"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def layer_from_tree(tree: Path) -> bytes:
    """A tar of everything under ``tree`` (names relative to it), sorted, owners and modes
    and mtimes kept: what ``tar -C tree -c .`` would give, made the same way every time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory, folders, files in os.walk(tree):
            folders.sort()
            for name in sorted([*folders, *files]):
                path = Path(directory) / name
                info = archive.gettarinfo(str(path), arcname=str(path.relative_to(tree)))
                info.uname = info.gname = ""
                if info.isreg():
                    with path.open("rb") as data:
                        archive.addfile(info, data)
                else:
                    archive.addfile(info)
    return buffer.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        # zlib at level 6 with a gzip wrapper; no name, no time: the same bytes every time.
        packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return packer.compress(tar) + packer.flush()
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(tar)
    return tar


@dataclass(frozen=True)
class Built:
    """An image's parts as blobs: digest -> bytes, and the top descriptor."""

    blobs: dict[str, bytes]
    manifest: dict[str, Any]  # the descriptor of the image manifest, for an index
    config_digest: str
    layer_digests: tuple[str, ...]  # as stored
    diff_ids: tuple[str, ...]


def build_image(
    layers: Sequence[bytes],
    *,
    compression: str = "gzip",
    tag: str | None = "latest",
    arch: str | None = None,
    diff_ids: Sequence[str] | None = None,
) -> Built:
    """The blobs of one image; ``diff_ids`` overrides the config's (to build a wrong one)."""
    arch = arch or OCI_ARCH.get(platform.machine(), platform.machine())
    blobs: dict[str, bytes] = {}
    stored = [compress(layer, compression) for layer in layers]
    descriptors = []
    for blob in stored:
        blobs[_digest(blob)] = blob
        descriptors.append(
            {
                "mediaType": MEDIA_LAYER + SUFFIX[compression],
                "digest": _digest(blob),
                "size": len(blob),
            }
        )
    ids = list(diff_ids) if diff_ids is not None else [_digest(layer) for layer in layers]
    config = _json(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ids},
        }
    )
    blobs[_digest(config)] = config
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": descriptors,
        }
    )
    blobs[_digest(manifest)] = manifest
    descriptor: dict[str, Any] = {
        "mediaType": MEDIA_MANIFEST,
        "digest": _digest(manifest),
        "size": len(manifest),
        "platform": {"architecture": arch, "os": "linux"},
    }
    if tag is not None:
        descriptor["annotations"] = {REF_NAME: tag}
    return Built(blobs, descriptor, _digest(config), tuple(_digest(b) for b in stored), tuple(ids))


def layout_files(images: Sequence[Built]) -> dict[str, bytes]:
    """The files of an OCI layout holding ``images`` (one index entry each)."""
    files = {"oci-layout": _json({"imageLayoutVersion": "1.0.0"})}
    for image in images:
        for digest, blob in image.blobs.items():
            files[f"blobs/sha256/{digest.partition(':')[2]}"] = blob
    files["index.json"] = _json(
        {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [i.manifest for i in images]}
    )
    return files


def write_layout(out: Path, layers: Sequence[bytes], **image: Any) -> Path:
    """An OCI image layout directory at ``out`` holding one image (what ``skopeo copy ...
    oci:OUT:TAG`` writes); keywords as for ``build_image``."""
    return write_files(out, layout_files([build_image(layers, **image)]))


def write_files(out: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return out


def tar_files(out: Path, files: dict[str, bytes]) -> Path:
    """``files`` as a tar archive at ``out`` (parent directories as members first)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        folders = sorted({str(Path(n).parent) for n in files if "/" in n})
        for folder in _with_parents(folders):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return out


def _with_parents(folders: list[str]) -> list[str]:
    every: set[str] = set()
    for folder in folders:
        parts = folder.split("/")
        every.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(every)


def write_oci_archive(out: Path, layers: Sequence[bytes], **image: Any) -> Path:
    """An oci-archive (the layout, tarred: ``skopeo copy ... oci-archive:OUT``)."""
    return tar_files(out, layout_files([build_image(layers, **image)]))


def docker_archive_files(
    layers: Sequence[bytes], *, tag: str = "extsvc.test/extension:latest", compression: str = ""
) -> dict[str, bytes]:
    """The files of a ``docker save`` archive: manifest.json, the config, one tar per layer."""
    arch = OCI_ARCH.get(platform.machine(), platform.machine())
    ids = [_digest(layer) for layer in layers]
    config = _json(
        {
            "architecture": arch,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ids},
        }
    )
    config_name = f"{_digest(config).partition(':')[2]}.json"
    files = {config_name: config}
    names = []
    for layer, diff_id in zip(layers, ids, strict=True):
        name = f"{diff_id.partition(':')[2]}/layer.tar"
        files[name] = compress(layer, compression)
        names.append(name)
    files["manifest.json"] = _json([{"Config": config_name, "RepoTags": [tag], "Layers": names}])
    return files


def write_docker_archive(out: Path, layers: Sequence[bytes], **options: Any) -> Path:
    """A docker-archive (``docker save``/``podman save``) at ``out``."""
    return tar_files(out, docker_archive_files(layers, **options))
