"""`extsvc extension install` against `tar -x` of the same layers.

An image of about 100 MB (uncompressed) of real files (this host's /usr/lib and
/usr/share, the mix of an extension's rootfs: libraries, binaries, small data files) in
three gzip layers, as an OCI layout. Measured in this same run, each a median of
ROUNDS taken in turns, each into a fresh directory on the same filesystem, page cache warm:

* ``tar``: ``tar -xzf LAYER -C DIR`` for each layer in turn (GNU tar, gzip in a
  second process: tar gets two CPUs, extsvc one);
* ``install``: ``extsvc extension install LAYOUT --root DIR``, the whole command:
  interpreter start, digests of every blob (compressed and uncompressed), the checks,
  staging and the atomic move into the root, the record.

Target: install <= 1.5x tar. Run: ``make bench`` or
``.venv/bin/python bench/extension_bench.py [--uncompressed]``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
TARGET_BYTES = 100 * 1024 * 1024
LAYERS = 3
BIN = Path(sys.executable).parent
SOURCES = ("/usr/lib", "/usr/share")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from extsvc.extension import imagebuild  # noqa: E402


def gather(tree: Path) -> tuple[int, int]:
    """Copy regular files of SOURCES into LAYERS layer trees until TARGET_BYTES."""
    total = files = 0
    for source in SOURCES:
        for directory, folders, names in os.walk(source):
            folders.sort()
            for name in sorted(names):
                path = Path(directory) / name
                if path.is_symlink() or not path.is_file() or not os.access(path, os.R_OK):
                    continue
                size = path.stat().st_size
                if size > 20 * 1024 * 1024:
                    continue
                layer = tree / f"layer{files % LAYERS}"
                target = layer / "rootfs/usr/local/lib/containers/bench" / path.relative_to("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                os.chmod(target, 0o644)
                total += size
                files += 1
                if total >= TARGET_BYTES:
                    return total, files
    return total, files


def timed(command: list[str], fresh: Path) -> float:
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def medians(commands: list[list[str]], fresh: Path) -> list[float]:
    """Each command's median of ROUNDS, the commands taking turns (the host's load of the
    moment hits both alike)."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(ROUNDS):
        for index, command in enumerate(commands):
            times[index].append(timed(command, fresh))
    return [statistics.median(t) for t in times]


def main() -> int:
    compression = "" if "--uncompressed" in sys.argv else "gzip"
    with tempfile.TemporaryDirectory(dir="/var/tmp") as temporary:
        work = Path(temporary)
        total, files = gather(work / "trees")
        first = work / "trees/layer0"
        (first / "manifest.yaml").write_text(
            "version: v1alpha1\nmetadata:\n  name: bench\n  version: 1.0.0\n"
            "  author: extsvc bench\n  description: about 100 MB of files\n"
        )
        layers = [imagebuild.layer_from_tree(work / f"trees/layer{i}") for i in range(LAYERS)]
        layout = imagebuild.write_layout(work / "layout", layers, compression=compression)
        blobs = [
            layout
            / "blobs/sha256"
            / imagebuild._digest(imagebuild.compress(layer, compression))[7:]
            for layer in layers
        ]
        stored = sum(blob.stat().st_size for blob in blobs)
        flag = "-xzf" if compression else "-xf"
        fresh = work / "fresh"
        script = " && ".join(f"tar {flag} {blob} -C {fresh}" for blob in blobs)
        install_command = [str(BIN / "extsvc"), "extension", "install", str(layout)]
        tar, install = medians(
            [["sh", "-c", script], [*install_command, "--root", str(fresh)]], fresh
        )
    ratio = install / tar
    print(
        f"extension install: {files} files, {total / 1e6:.0f} MB in {LAYERS} "
        f"{compression or 'uncompressed'} layers ({stored / 1e6:.0f} MB stored)"
    )
    print(
        f"  tar -x of the layers: {tar * 1000:.0f} ms   "
        f"extsvc extension install: {install * 1000:.0f} ms"
    )
    print(f"  ratio {ratio:.2f}x (target <= 1.5x): {'ok' if ratio <= 1.5 else 'OVER'}")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
