"""The JSON of an image (pure): which manifest, which layers, which digests to expect.

* OCI image layout (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``): the index's
  manifest, chosen by its ``org.opencontainers.image.ref.name`` annotation when a tag is
  asked for or when there are several; a nested index (a multi-platform image) gives the
  manifest of ``linux/<this host's architecture>``.
* docker-archive (``docker save``, ``podman save``): ``manifest.json`` lists, per image,
  its config file, its tags and its layer files; the config's ``rootfs.diff_ids`` are
  the digests of the layers uncompressed, the only digests such an archive has.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from extsvc.extension.errors import ExtensionError

REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# Layer media type -> compression ("" for none); the non-distributable ones are the same.
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_JSON_BYTES = 4 * 1024 * 1024
# platform.machine() -> OCI architecture
OCI_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]
    platform: dict[str, Any]

    @property
    def hex(self) -> str:
        return self.digest.partition(":")[2]


@dataclass(frozen=True)
class LayerRef:
    """One layer to apply: where it is, and what it must hash to."""

    location: str  # a blob digest (OCI) or a member name (docker-archive)
    compression: str | None  # "", "gzip", "zstd"; None: tell from its first bytes
    digest: str | None  # sha256 of the bytes as stored (OCI), None when unknown
    size: int | None
    diff_id: str | None  # sha256 of the uncompressed tar, from the config


def load_json(what: str, data: bytes) -> Any:
    if len(data) > MAX_JSON_BYTES:
        raise ExtensionError(f"{what}: larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ExtensionError(f"{what}: not valid JSON ({error})") from None


def descriptor(what: str, raw: Any) -> Descriptor:
    if not isinstance(raw, dict):
        raise ExtensionError(f"{what}: a descriptor must be an object")
    digest, size = raw.get("digest"), raw.get("size")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ExtensionError(f"{what}: digest {str(digest)[:80]!r} is not sha256:<64 hex digits>")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ExtensionError(f"{what}: size must be a non-negative integer")
    annotations = raw.get("annotations") or {}
    platform = raw.get("platform") or {}
    return Descriptor(
        media_type=str(raw.get("mediaType", "")),
        digest=digest,
        size=size,
        annotations=annotations if isinstance(annotations, dict) else {},
        platform=platform if isinstance(platform, dict) else {},
    )


def _index_entries(what: str, index: Any) -> list[Descriptor]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise ExtensionError(f"{what}: no manifests")
    return [descriptor(f"{what}: manifests[{i}]", raw) for i, raw in enumerate(manifests)]


def pick_from_index(what: str, index: Any, tag: str | None) -> Descriptor:
    """The top index's entry for ``tag`` (or its only entry)."""
    entries = _index_entries(what, index)
    if tag is not None:
        tagged = [entry for entry in entries if entry.annotations.get(REF_NAME) == tag]
        if not tagged:
            known = sorted({e.annotations[REF_NAME] for e in entries if REF_NAME in e.annotations})
            raise ExtensionError(
                f"{what}: no image tagged {tag!r} (tags: {', '.join(known) or 'none'})"
            )
        return tagged[0]
    if len(entries) > 1:
        tags = sorted({e.annotations.get(REF_NAME, "?") for e in entries})
        raise ExtensionError(
            f"{what}: holds {len(entries)} images; pick one with DIR:TAG (tags: {', '.join(tags)})"
        )
    return entries[0]


def pick_platform(what: str, index: Any, machine: str) -> Descriptor:
    """A nested (multi-platform) index's manifest for linux on ``machine``."""
    arch = OCI_ARCH.get(machine.lower(), machine.lower())
    entries = _index_entries(what, index)
    for entry in entries:
        platform = entry.platform
        if platform.get("os", "linux") == "linux" and platform.get("architecture") == arch:
            return entry
    found = sorted(
        f"{e.platform.get('os', '?')}/{e.platform.get('architecture', '?')}" for e in entries
    )
    raise ExtensionError(f"{what}: no image for linux/{arch} (has {', '.join(found)})")


def manifest_layers(what: str, manifest: Any) -> tuple[Descriptor, list[Descriptor]]:
    """The config descriptor and the layer descriptors of an image manifest."""
    if not isinstance(manifest, dict):
        raise ExtensionError(f"{what}: the manifest must be an object")
    config = descriptor(f"{what}: config", manifest.get("config"))
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ExtensionError(f"{what}: the manifest has no layers list")
    found = [descriptor(f"{what}: layers[{i}]", raw) for i, raw in enumerate(layers)]
    for i, layer in enumerate(found):
        if layer.media_type not in LAYER_TYPES:
            raise ExtensionError(
                f"{what}: layers[{i}]: unsupported media type {layer.media_type[:100]!r}"
            )
    return config, found


def diff_ids(what: str, config: Any, layer_count: int) -> list[str]:
    """The config's ``rootfs.diff_ids``, one per layer."""
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and _DIGEST.match(i) for i in ids):
        raise ExtensionError(f"{what}: the config has no valid rootfs.diff_ids")
    if len(ids) != layer_count:
        raise ExtensionError(
            f"{what}: the config lists {len(ids)} layer digests for {layer_count} layers"
        )
    return ids


def docker_image(what: str, manifest: Any, tag: str | None) -> tuple[str, list[str]]:
    """docker-archive ``manifest.json`` -> (config file, layer files) of the chosen image."""
    if not isinstance(manifest, list) or not manifest:
        raise ExtensionError(f"{what}: manifest.json lists no image")
    images = [entry for entry in manifest if isinstance(entry, dict)]
    if tag is not None:
        chosen = [e for e in images if tag in (e.get("RepoTags") or []) or _short_tags(e, tag)]
        if not chosen:
            raise ExtensionError(f"{what}: no image tagged {tag!r}")
        image = chosen[0]
    elif len(images) > 1:
        raise ExtensionError(f"{what}: holds {len(images)} images; pick one with FILE:TAG")
    else:
        image = images[0]
    config, layers = image.get("Config"), image.get("Layers")
    if not isinstance(config, str) or not isinstance(layers, list):
        raise ExtensionError(f"{what}: manifest.json: an image needs Config and Layers")
    if not all(isinstance(layer, str) for layer in layers):
        raise ExtensionError(f"{what}: manifest.json: Layers must be file names")
    return config, layers


def _short_tags(entry: dict[str, Any], tag: str) -> bool:
    """``name:tag`` also matches ``docker.io/library/name:tag`` and ``localhost/name:tag``."""
    tags = entry.get("RepoTags") or []
    return any(isinstance(t, str) and t.rsplit("/", 1)[-1] == tag for t in tags)
