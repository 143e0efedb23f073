"""Reading a layer: the bytes as stored, hashed and counted; decompressed, hashed and
bounded (gzip with zlib, zstd with the ``zstandard`` binding, imported only for a zstd
layer: Python 3.11 has no zstd of its own, and most images never need it).

Nothing is trusted before the end of the stream: the caller reads the layer through,
then ``finish`` compares sizes and digests; a mismatch is an error and the caller drops
everything it unpacked. A decompression bomb is stopped while it expands: past a floor,
the uncompressed bytes may not exceed ``max_ratio`` times the compressed bytes read,
and the whole image may not unpack to more than ``max_bytes``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from extsvc.extension.errors import ExtensionError

CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Below this many uncompressed bytes a layer may have any ratio (a small file of zeros).
RATIO_FLOOR = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 16 * 1024**3  # the whole image, uncompressed
    max_ratio: int = 200  # uncompressed / compressed, past RATIO_FLOOR


@dataclass
class Budget:
    """What the layers of one image have unpacked so far (shared by its layers)."""

    limits: Limits
    used: int = 0


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobReader:
    """The bytes of a blob as stored, hashed and counted as they are read."""

    def __init__(self, stream: BinaryIO, what: str, digest: str | None, size: int | None) -> None:
        self.stream = stream
        self.what = what
        self.digest = digest
        self.size = size
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = CHUNK) -> bytes:
        data = self.stream.read(n)
        self.hash.update(data)
        self.count += len(data)
        if self.size is not None and self.count > self.size:
            raise ExtensionError(
                f"{self.what}: longer than the {self.size} bytes its descriptor says"
            )
        return data

    def finish(self) -> str:
        while self.read(CHUNK):
            pass
        actual = "sha256:" + self.hash.hexdigest()
        if self.size is not None and self.count != self.size:
            raise ExtensionError(
                f"{self.what}: {self.count} bytes where its descriptor says {self.size}"
            )
        if self.digest is not None and actual != self.digest:
            raise ExtensionError(
                f"{self.what}: digest mismatch: the manifest says {self.digest}, "
                f"the blob is {actual}"
            )
        return actual


class LayerReader:
    """The uncompressed tar of a layer, a file-like ``read`` for ``tarfile`` (stream mode)."""

    def __init__(
        self, blob: BlobReader, compression: str | None, diff_id: str | None, budget: Budget
    ) -> None:
        self.blob = blob
        self.diff_id = diff_id
        self.budget = budget
        self.hash = hashlib.sha256()
        self.count = 0
        self.buffer = b""
        first = blob.read(CHUNK)
        if compression is None:
            compression = (
                "gzip"
                if first.startswith(GZIP_MAGIC)
                else "zstd"
                if first.startswith(ZSTD_MAGIC)
                else ""
            )
        self.compression = compression
        self.chunks = self._chunks(first)

    def _chunks(self, first: bytes) -> Iterator[bytes]:
        if self.compression == "gzip":
            return _gunzip(self.blob, first)
        if self.compression == "zstd":
            return _unzstd(self.blob, first)
        return _plain(self.blob, first)

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buffer) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self._account(chunk)
            self.buffer = self.buffer + chunk if self.buffer else chunk
        if n < 0 or n >= len(self.buffer):
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _account(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.count += len(chunk)
        self.budget.used += len(chunk)
        limits = self.budget.limits
        if self.budget.used > limits.max_bytes:
            raise ExtensionError(
                f"{self.blob.what}: the image unpacks to more than {limits.max_bytes} bytes "
                "(the limit, --max-size)"
            )
        if self.count > RATIO_FLOOR and self.count > limits.max_ratio * max(self.blob.count, 1):
            raise ExtensionError(
                f"{self.blob.what}: expands more than {limits.max_ratio} times "
                f"({self.blob.count} bytes to more than {self.count}): a decompression bomb?"
            )

    def finish(self) -> None:
        """Read to the end (the tar's trailing blocks), then check every digest and size."""
        while self.read(CHUNK):
            pass
        self.blob.finish()
        actual = "sha256:" + self.hash.hexdigest()
        if self.diff_id is not None and actual != self.diff_id:
            raise ExtensionError(
                f"{self.blob.what}: uncompressed digest mismatch: the config says "
                f"{self.diff_id}, the layer is {actual}"
            )


def _plain(blob: BlobReader, first: bytes) -> Iterator[bytes]:
    data = first
    while data:
        yield data
        data = blob.read(CHUNK)


def _gunzip(blob: BlobReader, first: bytes) -> Iterator[bytes]:
    # 16 + MAX_WBITS: a gzip header and trailer (CRC and length checked by zlib).
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    in_member = False
    raw = first
    try:
        while raw:
            while raw:
                in_member = True
                out = decompressor.decompress(raw, CHUNK)
                if out:
                    yield out
                raw = decompressor.unconsumed_tail
                if decompressor.eof:
                    # Several gzip members one after the other (pigz -i, cat a.gz b.gz).
                    raw = decompressor.unused_data
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    in_member = False
            raw = blob.read(CHUNK)
    except zlib.error as error:
        raise ExtensionError(f"{blob.what}: not valid gzip ({error})") from None
    if in_member:
        raise ExtensionError(f"{blob.what}: the gzip stream is cut short")


def _unzstd(blob: BlobReader, first: bytes) -> Iterator[bytes]:
    import zstandard  # only a zstd layer pays for it

    class _Prefixed:
        def __init__(self) -> None:
            self.first: bytes | None = first

        def read(self, n: int) -> bytes:
            if self.first is not None:
                data, self.first = self.first, None
                return data
            return blob.read(n)

    reader = zstandard.ZstdDecompressor().stream_reader(
        _Prefixed(),  # type: ignore[arg-type]  # any object with read() will do
        read_size=CHUNK,
        read_across_frames=True,
    )
    try:
        while chunk := reader.read(CHUNK):
            yield chunk
    except zstandard.ZstdError as error:
        raise ExtensionError(f"{blob.what}: not valid zstd ({error})") from None
