"""An installed extension just works: install an image of each kind, list it, compile
ROOT/usr/local/etc/containers, run it with real runc, see each service's line, remove."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)
from tests.extension.images import KINDS, make_tree, manifest_yaml, snapshot, source_of
from tests.support.rootfs import make_busybox_rootfs

pytestmark = pytest.mark.runc


def extsvc(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*EXTSVC, *args], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def busybox_extension(tmp_path: Path, kind: str, name: str) -> str:
    """An extension image as Talos's catalogue has them: the service file in
    usr/local/etc/containers, its rootfs (busybox-static) in usr/local/lib/containers."""
    tree = make_tree(
        tmp_path / f"tree-{kind}",
        {
            f"usr/local/etc/containers/{name}.yaml": shell_service(
                name, f"echo '{name} up from {kind}'; {IDLE}"
            )
        },
        manifest_yaml(name, "1.2.3"),
    )
    make_busybox_rootfs(tree / "rootfs/usr/local/lib/containers" / name)
    return source_of(kind, tree, tmp_path / f"image-{kind}")


def test_installed_extensions_of_each_kind_compile_and_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    names = {kind: unique(f"ext{index}") for index, kind in enumerate(KINDS)}
    for kind, name in names.items():
        done = extsvc(
            "extension", "install", busybox_extension(tmp_path, kind, name), "--root", str(root)
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{name}: installed 1.2.3 (")

    listed = json.loads(extsvc("extension", "list", "--root", str(root), "-o", "json").stdout)
    assert {(r["name"], r["sourceKind"], tuple(r["services"])) for r in listed} == {
        (name, kind, (name,)) for kind, name in names.items()
    }

    out = tmp_path / "out"
    done = extsvc("compile", str(root / "usr/local/etc/containers"), "-o", str(out),
                  "--rootfs-base", str(root / "usr/local/lib/containers"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with running_daemon(tmp_path, out, list(names.values())) as daemon:
        for kind, name in names.items():
            daemon.wait_state(f"ext-{name}", "Running")
            wait_for(lambda n=name: bool(daemon.logs(f"ext-{n}")), 10, f"{name}'s line")
            assert daemon.logs(f"ext-{name}")[0] == f"{name} up from {kind}"
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", list(names.values())) == []

    for name in names.values():
        done = extsvc("extension", "remove", name, "--root", str(root))
        assert done.returncode == 0, done.stderr
    left = set(snapshot(root))
    assert left <= {"usr", "usr/local", "usr/local/lib"}, left
    assert not os.listdir(root / "usr/local/lib")
