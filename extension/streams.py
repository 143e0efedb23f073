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
import os
import queue
import threading
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


_END = object()
# Chunks decompressed ahead of the reader: bounds the memory to ~QUEUE_CHUNKS MiB.
QUEUE_CHUNKS = 4


class LayerReader:
    """The uncompressed tar of a layer, file-like for ``tarfile`` (read, tell, seek forward).

    A second thread reads the blob, hashes it, decompresses it, hashes and bounds what
    comes out, while the caller parses and writes: as ``tar -xz`` gets gzip in a second
    process. zlib and hashlib release the GIL for their work, so the two overlap; the
    thread shares nothing with the caller but a bounded queue of chunks (an error it meets
    is handed on through it, and raised by ``read``).
    """

    def __init__(
        self, blob: BlobReader, compression: str | None, diff_id: str | None, budget: Budget
    ) -> None:
        self.blob = blob
        self.diff_id = diff_id
        self.budget = budget
        self.hash = hashlib.sha256()
        self.count = 0
        self.buffer = bytearray()
        self.offset = 0  # where in ``buffer`` the next read starts
        self.position = 0  # bytes handed out (tell)
        self.ended = False
        self.blob_checked = False  # the producer read the blob to its end and checked it
        self.blob_digest = ""
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
        self.queue: queue.Queue[object] = queue.Queue(QUEUE_CHUNKS)
        self.stopping = threading.Event()
        self.producer = threading.Thread(
            target=self._produce, args=(first,), name="extsvc-layer", daemon=True
        )
        self.producer.start()

    def _chunks(self, first: bytes) -> Iterator[bytes]:
        if self.compression == "gzip":
            return _gunzip(self.blob, first)
        if self.compression == "zstd":
            return _unzstd(self.blob, first)
        return _plain(self.blob, first)

    def _produce(self, first: bytes) -> None:
        try:
            for chunk in self._chunks(first):
                self._account(chunk)
                if not self._put(chunk):
                    return
            self.blob_digest = self.blob.finish()
            self.blob_checked = True
            self._put(_END)
        except BaseException as error:  # handed to the reader, raised there
            self._put(error)

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _next_chunk(self) -> bytes | None:
        if self.ended:
            return None
        while True:
            try:
                item = self.queue.get(timeout=1)
                break
            except queue.Empty:
                # Only after stop(), by a bug: never wait for a producer that is gone.
                if not self.producer.is_alive() and self.queue.empty():
                    raise ExtensionError(f"{self.blob.what}: the layer reader stopped") from None
        if item is _END:
            self.ended = True
            return None
        if isinstance(item, BaseException):
            self.ended = True
            raise item
        assert isinstance(item, bytes)
        return item

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left for -1); b"" at the end."""
        while n < 0 or len(self.buffer) - self.offset < n:
            chunk = self._next_chunk()
            if chunk is None:
                break
            if self.offset:
                # Drop what was handed out before growing (the buffer stays ~ one chunk).
                del self.buffer[: self.offset]
                self.offset = 0
            self.buffer += chunk
        end = len(self.buffer) if n < 0 else min(len(self.buffer), self.offset + n)
        data = bytes(memoryview(self.buffer)[self.offset : end])
        self.offset = end
        self.position += len(data)
        return data

    def copy_into(self, fd: int, size: int) -> None:
        """The next ``size`` bytes (or fewer, at the end) written to ``fd``, without copies."""
        while size > 0:
            if self.offset == len(self.buffer):
                chunk = self._next_chunk()
                if chunk is None:
                    return
                self.buffer, self.offset = bytearray(chunk), 0
            end = min(len(self.buffer), self.offset + size)
            view = memoryview(self.buffer)[self.offset : end]
            while view:
                view = view[os.write(fd, view) :]
            size -= end - self.offset
            self.position += end - self.offset
            self.offset = end

    # tarfile's seekable mode asks where it is and seeks forward past what it skips:
    # cheaper than its stream mode, which copies its whole buffer for each header.
    def tell(self) -> int:
        return self.position

    def seek(self, target: int, whence: int = 0) -> int:
        if whence != 0 or target < self.position:
            raise OSError("a layer is read front to back only")
        while self.position < target:
            if not self.read(min(CHUNK, target - self.position)):
                break
        return self.position

    def _account(self, chunk: bytes) -> None:
        if self.compression:  # an uncompressed layer's diff_id is its blob's digest
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

    def stop(self) -> None:
        """End the producer (the reader gives up on the layer); idempotent."""
        self.stopping.set()
        self.producer.join()

    def check_blob(self) -> None:
        """After a problem: whether the blob is what its descriptor says (its digest
        error explains any other problem in it, so it is raised instead)."""
        self.stop()
        if not self.blob_checked:
            self.blob.finish()

    def finish(self) -> None:
        """Read to the end (the tar's trailing blocks), then check every digest and size."""
        while self.read(CHUNK):
            pass
        self.stop()
        actual = "sha256:" + self.hash.hexdigest() if self.compression else self.blob_digest
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
