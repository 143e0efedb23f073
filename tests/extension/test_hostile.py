"""Hostile images: each is refused with a clear error, and NOTHING is written — not
outside --root, not inside it (the root is byte for byte as it was)."""

from __future__ import annotations

import json
import os
import signal
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from extsvc.extension import imagebuild, members, store
from extsvc.extension.errors import ExtensionError
from extsvc.extension.install import InstallOptions, install, installed
from extsvc.extension.store import Layout, locked
from extsvc.extension.streams import Limits
from tests.extension.images import (
    base_layer,
    crafted,
    directory,
    hardlink,
    make_tree,
    manifest_yaml,
    member,
    snapshot,
    symlink,
)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A root with an extension already installed, and a directory outside it with a
    file an attacker would like to reach."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "victim").write_text("precious")
    tree = make_tree(tmp_path / "present", {"usr/local/etc/containers/present.yaml": "x"},
                     manifest_yaml("present"))  # fmt: skip
    install([str(tree)], root)
    return {"root": root, "outside": outside, "tmp": tmp_path}


def refused(world: dict[str, Path], layers: list[bytes], message: str, **image: object) -> None:
    root, outside = world["root"], world["outside"]
    before, outside_before = snapshot(root), snapshot(outside)
    layout = imagebuild.write_layout(world["tmp"] / "hostile", layers, **image)  # type: ignore[arg-type]
    with pytest.raises(ExtensionError) as caught:
        install([str(layout)], root)
    assert message in str(caught.value)
    assert snapshot(root) == before
    assert snapshot(outside) == outside_before
    assert (outside / "victim").read_text() == "precious"


def test_a_climbing_member_name(world: dict[str, Path]) -> None:
    layer = crafted(member("rootfs/usr/local/../../../../outside/victim", b"owned"))
    refused(world, [base_layer(), layer], "member name climbs out with '..'")


def test_an_absolute_member_name(world: dict[str, Path]) -> None:
    layer = crafted(member(str(world["outside"] / "victim"), b"owned"))
    refused(world, [base_layer(), layer], "absolute member name")


def test_a_file_written_through_a_symlink_of_the_same_layer(world: dict[str, Path]) -> None:
    layer = crafted(
        symlink("rootfs/usr/local/door", str(world["outside"])),
        member("rootfs/usr/local/door/victim", b"owned"),
    )
    refused(world, [base_layer(), layer], "goes through 'rootfs/usr/local/door', a symlink")


def test_a_file_written_through_a_symlink_of_an_earlier_layer(world: dict[str, Path]) -> None:
    first = crafted(symlink("rootfs/usr/local/door", "../../../outside"))
    second = crafted(member("rootfs/usr/local/door/victim", b"owned"))
    refused(world, [base_layer(), first, second], "a symlink of the image")


def test_a_symlink_replacing_a_directory_then_a_file_through_it(world: dict[str, Path]) -> None:
    first = crafted(directory("rootfs/usr/local/lib"))
    second = crafted(
        symlink("rootfs/usr/local/lib", str(world["outside"])),
        member("rootfs/usr/local/lib/victim", b"owned"),
    )
    refused(world, [base_layer(), first, second], "a symlink of the image")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/etc/passwd", "a hard link to an absolute path"),
        ("../../outside/victim", "climbs out with '..'"),
        ("rootfs/usr/local/missing", "which is not a regular file of the image"),
    ],
)
def test_a_hard_link_to_a_file_outside(world: dict[str, Path], target: str, message: str) -> None:
    layer = crafted(hardlink("rootfs/usr/local/bin-victim", target))
    refused(world, [base_layer(), layer], message)


def test_a_hard_link_through_a_symlink(world: dict[str, Path]) -> None:
    layer = crafted(
        symlink("rootfs/usr/local/door", str(world["outside"])),
        hardlink("rootfs/usr/local/stolen", "rootfs/usr/local/door/victim"),
    )
    refused(world, [base_layer(), layer], "which is not a regular file of the image")


def test_a_whiteout_aimed_outside(world: dict[str, Path]) -> None:
    first = crafted(symlink("rootfs/usr/local/door", str(world["outside"])))
    second = crafted(member("rootfs/usr/local/door/.wh.victim"))
    refused(world, [base_layer(), first, second], "a symlink of the image")
    refused(world, [base_layer(), crafted(member("rootfs/usr/.wh..."))], "climbs out with '..'")
    refused(
        world, [base_layer(), crafted(member("rootfs/usr/.wh.."))], "a whiteout of 'rootfs/usr/.'"
    )


@pytest.mark.parametrize(
    ("kind", "what"),
    [(tarfile.CHRTYPE, "a character device"), (tarfile.BLKTYPE, "a block device"),
     (tarfile.FIFOTYPE, "a FIFO")],
)  # fmt: skip
def test_device_nodes_and_fifos(world: dict[str, Path], kind: bytes, what: str) -> None:
    layer = crafted(member("rootfs/usr/local/node", type=kind, mode=0o600))
    refused(
        world, [base_layer(), layer], f"/usr/local/node: special files are not allowed ({what})"
    )


@pytest.mark.parametrize(("mode", "what"), [(0o4755, "setuid"), (0o2755, "setgid")])
def test_setuid_and_setgid_files(world: dict[str, Path], mode: int, what: str) -> None:
    layer = crafted(member("rootfs/usr/local/bin-x", b"#!", mode=mode))
    refused(world, [base_layer(), layer], f"/usr/local/bin-x: {what} files are not allowed")


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("rootfs/etc/passwd", 0o644, "/etc/passwd: path is not allowed in extensions"),
        ("rootfs/usr/localx/tool", 0o644, "/usr/localx/tool: path is not allowed"),
        ("rootfs/usr/local/open", 0o666, "world-writable files are not allowed (mode 666)"),
        ("rootfs/usr/local/open-dir/", 0o777, "world-writable files are not allowed (mode 777)"),
        ("etc/passwd", 0o644, "unexpected 'etc' at the top of the image"),
    ],
)
def test_talos_rootfs_rules(world: dict[str, Path], name: str, mode: int, message: str) -> None:
    made = directory(name, mode) if name.endswith("/") else member(name, b"x", mode=mode)
    refused(world, [base_layer(), crafted(made)], message)


def test_a_sticky_world_writable_directory_is_a_containers_tmp(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    layer = crafted(directory("rootfs/usr/local/lib/containers/x/tmp", 0o1777))
    install([str(imagebuild.write_layout(tmp_path / "layout", [base_layer(), layer]))], root)
    mode = (root / "usr/local/lib/containers/x/tmp").stat().st_mode
    assert mode & 0o7777 == 0o1777


def test_a_decompression_bomb(world: dict[str, Path]) -> None:
    info = tarfile.TarInfo("rootfs/usr/local/zeros")
    info.size = 96 * 1024 * 1024  # past the 64 MiB below which any ratio is fine
    header = info.tobuf(tarfile.PAX_FORMAT)
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    bomb = packer.compress(header) + b"".join(packer.compress(zeros) for _ in range(96))
    bomb += packer.flush()
    layout = imagebuild.build_image([base_layer()], compression="gzip")
    files = imagebuild.layout_files([layout])
    # Swap in the bomb as a second layer (its descriptor says the truth: digest, size).
    manifest = json.loads(files[f"blobs/sha256/{layout.manifest['digest'][7:]}"])
    digest = imagebuild._digest(bomb)
    manifest["layers"].append({"mediaType": imagebuild.MEDIA_LAYER + "+gzip",
                               "digest": digest, "size": len(bomb)})  # fmt: skip
    config = json.loads(files[f"blobs/sha256/{layout.config_digest[7:]}"])
    config["rootfs"]["diff_ids"].append("sha256:" + "0" * 64)
    config_blob = imagebuild._json(config)
    manifest["config"].update(digest=imagebuild._digest(config_blob), size=len(config_blob))
    manifest_blob = imagebuild._json(manifest)
    top = imagebuild.Built(
        {**layout.blobs, digest: bomb, imagebuild._digest(config_blob): config_blob,
         imagebuild._digest(manifest_blob): manifest_blob},
        {**layout.manifest, "digest": imagebuild._digest(manifest_blob),
         "size": len(manifest_blob)},
        "", (), (),
    )  # fmt: skip
    path = imagebuild.write_files(world["tmp"] / "bomb", imagebuild.layout_files([top]))
    before = snapshot(world["root"])
    with pytest.raises(
        ExtensionError, match=r"expands more than 200 times .* a decompression bomb"
    ):
        install([str(path)], world["root"])
    assert snapshot(world["root"]) == before


def test_an_image_larger_than_the_size_limit(world: dict[str, Path]) -> None:
    layer = crafted(member("rootfs/usr/local/big", bytes(2 * 1024 * 1024)))
    layout = imagebuild.write_layout(world["tmp"] / "big", [base_layer(), layer])
    before = snapshot(world["root"])
    with pytest.raises(ExtensionError, match="unpacks to more than 1048576 bytes"):
        install([str(layout)], world["root"], InstallOptions(limits=Limits(max_bytes=1024 * 1024)))
    assert snapshot(world["root"]) == before


@pytest.mark.parametrize("compression", ["", "gzip"])
def test_a_layer_whose_digest_does_not_match(world: dict[str, Path], compression: str) -> None:
    layer = crafted(member("rootfs/usr/local/tool", b"good"))
    layout = imagebuild.write_layout(
        world["tmp"] / "tampered", [base_layer(), layer], compression=compression
    )
    stored = imagebuild.compress(layer, compression)
    blob = layout / "blobs/sha256" / imagebuild._digest(stored)[7:]
    # Same size: uncompressed, other content; gzip, one byte of the deflate stream flipped.
    tampered = (
        stored.replace(b"good", b"evil")
        if not compression
        else stored[:20] + bytes([stored[20] ^ 0xFF]) + stored[21:]
    )
    blob.write_bytes(tampered)
    before = snapshot(world["root"])
    with pytest.raises(ExtensionError, match="digest mismatch: the manifest says sha256:"):
        install([str(layout)], world["root"])
    assert snapshot(world["root"]) == before


def test_a_docker_archive_layer_that_does_not_match_its_config(world: dict[str, Path]) -> None:
    layer = crafted(member("rootfs/usr/local/tool", b"good"))
    files = imagebuild.docker_archive_files([base_layer(), layer])
    name = next(n for n in files if n.endswith("layer.tar") and files[n] == layer)
    files[name] = crafted(member("rootfs/usr/local/tool", b"evil"))
    archive = imagebuild.tar_files(world["tmp"] / "docker.tar", files)
    before = snapshot(world["root"])
    with pytest.raises(ExtensionError, match="uncompressed digest mismatch: the config says"):
        install([str(archive)], world["root"])
    assert snapshot(world["root"]) == before


# -- killed installs ---------------------------------------------------------------------


def _killed_at(step: int, source: Path, root: Path) -> int:
    """Run the install in a forked child that SIGKILLs itself before its ``step``-th
    open, mkdir, rename, unlink, rmdir or rmtree; its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            count = [0]

            def killing(real: Any) -> Any:
                def call(*args: Any, **kwargs: Any) -> Any:
                    count[0] += 1
                    if count[0] == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)

                return call

            calls = (os.open, os.mkdir, os.rename, os.rmdir, os.unlink)
            os.open, os.mkdir, os.rename, os.rmdir, os.unlink = (killing(f) for f in calls)
            store.shutil.rmtree = killing(store.shutil.rmtree)  # type: ignore[assignment]
            install([str(source)], root)
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_an_install_killed_at_any_step_leaves_the_old_or_the_new_root(tmp_path: Path) -> None:
    """SIGKILL before every open, mkdir, rename, unlink and rmdir of an upgrade in turn
    (staging and unpacking, the journal, the backups, placing, the commit, the clean-up);
    then the next transaction rolls back or finishes it, and the root is exactly the old
    one or exactly the new one."""
    files = {f"usr/local/lib/containers/hello/f{i}": str(i) for i in range(3)}
    old_tree = make_tree(tmp_path / "v1", {**files, "usr/local/lib/containers/hello/old": "o"},
                         manifest_yaml("hello", "1.0.0"))  # fmt: skip
    new_tree = make_tree(tmp_path / "v2", {**files, "usr/local/lib/new/dir/x": "n"},
                         manifest_yaml("hello", "2.0.0"))  # fmt: skip
    for path in files:
        (new_tree / "rootfs" / path).write_text("new")

    def state(root: Path) -> dict[str, tuple[int, int, str]]:
        return {k: v for k, v in snapshot(root).items() if not k.startswith("usr/local/lib/extsvc")}

    reference = tmp_path / "reference"
    reference.mkdir()
    install([str(old_tree)], reference)
    old = state(reference)
    install([str(new_tree)], reference)
    new = state(reference)
    outcomes = set()
    for limit in range(1, 200):
        root = tmp_path / f"root{limit}"
        root.mkdir()
        install([str(old_tree)], root)
        status = _killed_at(limit, new_tree, root)
        if os.WIFEXITED(status):
            assert state(root) == new
            # Killed at every step before: unpacking (opens, mkdirs) and the transaction.
            assert limit > 40, limit
            break
        assert os.WTERMSIG(status) == signal.SIGKILL
        with locked(Layout(root)):  # what the next install or remove does first
            pass
        after = state(root)
        assert after in (old, new), limit
        outcomes.add("old" if after == old else "new")
        assert not os.listdir(Layout(root).staging)
        assert not Layout(root).journal.exists()
        (record,) = installed(root)
        assert record["version"] == ("1.0.0" if after == old else "2.0.0")
    else:
        pytest.fail("the install never ran to its end")
    assert outcomes == {"old", "new"}


def test_an_image_of_too_many_members(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(members, "MAX_MEMBERS", 10)
    layer = crafted(*(member(f"rootfs/usr/local/f{i}") for i in range(20)))
    refused(world, [base_layer(), layer], "more than 10 members in the image's layers")
