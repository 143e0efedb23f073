"""`extsvc extension install | list | remove` on images of each kind, built here."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.extension import imagebuild
from extsvc.extension.errors import ExtensionError, ManifestError
from extsvc.extension.install import InstallOptions, install, installed, remove
from tests.extension.images import (
    KINDS,
    base_layer,
    crafted,
    directory,
    make_tree,
    manifest_yaml,
    member,
    snapshot,
    source_of,
)

SERVICE = "usr/local/etc/containers/hello.yaml"
BINARY = "usr/local/lib/containers/hello/bin/tool"
STATE = "usr/local/lib/extsvc"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def hello_tree(tmp_path: Path, version: str = "1.0.0", extra: dict[str, str] | None = None) -> Path:
    tree = make_tree(
        tmp_path / f"tree-{version}",
        {SERVICE: "name: hello\n", BINARY: "#!/bin/sh\n", **(extra or {})},
        manifest_yaml("hello", version),
    )
    os.chmod(tree / "rootfs" / BINARY, 0o755)
    return tree


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_installs_lists_and_removes(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    source = source_of(kind, hello_tree(tmp_path), tmp_path / "image")

    code, output = run("extension", "install", source, "--root", str(root))
    assert code == 0, output
    assert output == "hello: installed 1.0.0 (2 files; services: hello)\n"
    assert (root / SERVICE).read_text() == "name: hello\n"
    assert stat.S_IMODE((root / BINARY).stat().st_mode) == 0o755

    code, output = run("extension", "list", "--root", str(root), "-o", "json")
    (record,) = json.loads(output)
    assert record["name"] == "hello"
    assert record["version"] == "1.0.0"
    assert record["author"] == "extsvc tests"
    assert record["compatibility"] == ">= v1.5.0"
    assert record["services"] == ["hello"]
    assert record["sourceKind"] == kind
    assert (record["digest"] is None) == (kind == "directory")
    code, table = run("extension", "list", "--root", str(root))
    header = ["NAME", "VERSION", "AUTHOR", "SERVICES", "TALOS", "DIGEST"]
    assert table.splitlines()[0].split() == header
    assert ">= v1.5.0" in table.splitlines()[1]
    assert table.splitlines()[1].split()[:2] == ["hello", "1.0.0"]

    code, output = run("extension", "remove", "hello", "--root", str(root))
    assert code == 0, output
    assert output == "hello: removed 1.0.0 (2 files)\n"
    left = set(snapshot(root))
    assert left <= {"usr", "usr/local", "usr/local/lib"}, left


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_layers_of_each_compression_in_order_with_whiteouts(
    tmp_path: Path, compression: str
) -> None:
    first = crafted(
        member("manifest.yaml", manifest_yaml().encode()),
        directory("rootfs"),
        directory("rootfs/usr"),
        directory("rootfs/usr/local"),
        directory("rootfs/usr/local/lib"),
        member("rootfs/usr/local/lib/gone", b"old"),
        member("rootfs/usr/local/lib/kept", b"old"),
        directory("rootfs/usr/local/share"),
        member("rootfs/usr/local/share/a", b"a"),
        member("rootfs/usr/local/share/b", b"b"),
    )
    second = crafted(
        member("rootfs/usr/local/lib/.wh.gone"),
        member("rootfs/usr/local/lib/kept", b"new", mode=0o600),
        member("rootfs/usr/local/share/.wh..wh..opq"),
        member("rootfs/usr/local/share/c", b"c"),
        member("rootfs/usr/local/lib/link", type=b"1", linkname="rootfs/usr/local/lib/kept"),
    )
    layout = imagebuild.write_layout(tmp_path / "layout", [first, second], compression=compression)
    root = tmp_path / "root"
    root.mkdir()
    install([str(layout)], root)
    lib = root / "usr/local/lib"
    assert sorted(p.name for p in lib.iterdir()) == ["extsvc", "kept", "link"]
    assert (lib / "kept").read_bytes() == b"new"
    assert stat.S_IMODE((lib / "kept").stat().st_mode) == 0o600
    assert (lib / "link").stat().st_ino == (lib / "kept").stat().st_ino
    assert sorted(p.name for p in (root / "usr/local/share").iterdir()) == ["c"]
    assert (root / "usr/local/share/c").stat().st_mtime == 1_700_000_000


def test_a_tag_picks_the_image_of_a_layout_holding_several(tmp_path: Path) -> None:
    images = [
        imagebuild.build_image([imagebuild.layer_from_tree(hello_tree(tmp_path, v))], tag=v)
        for v in ("1.0.0", "2.0.0")
    ]
    layout = imagebuild.write_files(tmp_path / "layout", imagebuild.layout_files(images))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ExtensionError, match="holds 2 images; pick one with DIR:TAG"):
        install([str(layout)], root)
    with pytest.raises(ExtensionError, match=r"no image tagged '3.0.0' \(tags: 1.0.0, 2.0.0\)"):
        install([f"{layout}:3.0.0"], root)
    (done,) = install([f"{layout}:2.0.0"], root)
    assert done.version == "2.0.0"


def test_a_multi_platform_index_gives_this_hosts_image(tmp_path: Path) -> None:
    layer = imagebuild.layer_from_tree(hello_tree(tmp_path))
    mine = imagebuild.build_image([layer], tag=None)
    other_arch = "s390x"
    other = imagebuild.build_image([base_layer()], tag=None, arch=other_arch)
    other.manifest["platform"]["architecture"] = other_arch
    nested = imagebuild._json(
        {"schemaVersion": 2, "mediaType": imagebuild.MEDIA_INDEX,
         "manifests": [other.manifest, mine.manifest]}
    )  # fmt: skip
    digest = imagebuild._digest(nested)
    top = imagebuild.Built(
        {**mine.blobs, **other.blobs, digest: nested},
        {"mediaType": imagebuild.MEDIA_INDEX, "digest": digest, "size": len(nested),
         "annotations": {"org.opencontainers.image.ref.name": "v1"}},
        "", (), (),
    )  # fmt: skip
    layout = imagebuild.write_files(tmp_path / "layout", imagebuild.layout_files([top]))
    root = tmp_path / "root"
    root.mkdir()
    install([f"{layout}:v1"], root)
    assert (root / SERVICE).is_file()


def test_an_upgrade_replaces_the_files_and_drops_those_no_longer_shipped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    old_only = "usr/local/lib/containers/hello/bin/old-tool"
    install([str(hello_tree(tmp_path, "1.0.0", {old_only: "old"}))], root)
    assert (root / old_only).exists()
    (done,) = install([str(hello_tree(tmp_path, "2.0.0"))], root)
    assert (done.previous, done.version) == ("1.0.0", "2.0.0")
    assert not (root / old_only).exists()
    assert (root / BINARY).exists()
    (record,) = installed(root)
    assert record["version"] == "2.0.0"
    assert old_only not in record["files"]


def test_a_file_of_another_extension_or_of_nobody_is_never_overwritten(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install([str(hello_tree(tmp_path))], root)
    other = make_tree(tmp_path / "other", {SERVICE: "name: other\n"}, manifest_yaml("other"))
    before = snapshot(root)
    with pytest.raises(ExtensionError, match=f"/{SERVICE} belongs to the extension 'hello'"):
        install([str(other)], root)
    assert snapshot(root) == before

    mine = root / "usr/local/etc/containers/mine.yaml"
    mine.write_text("name: mine\n")
    third = make_tree(
        tmp_path / "third", {"usr/local/etc/containers/mine.yaml": "x"}, manifest_yaml("third")
    )
    with pytest.raises(ExtensionError, match="is already there, a file no extension installed"):
        install([str(third)], root)
    assert mine.read_text() == "name: mine\n"


def test_remove_takes_exactly_its_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install([str(hello_tree(tmp_path))], root)
    other = make_tree(
        tmp_path / "other", {"usr/local/etc/containers/other.yaml": "name: other\n"},
        manifest_yaml("other"),
    )  # fmt: skip
    install([str(other)], root)
    (root / "usr/local/etc/containers/users-own.yaml").write_text("x")
    remove("hello", root)
    assert sorted(p.name for p in (root / "usr/local/etc/containers").iterdir()) == [
        "other.yaml",
        "users-own.yaml",
    ]
    assert not (root / "usr/local/lib/containers/hello").exists()
    assert [r["name"] for r in installed(root)] == ["other"]
    with pytest.raises(
        ExtensionError, match=r"no extension 'hello' is installed .*\(installed: other\)"
    ):
        remove("hello", root)


def test_remove_refuses_a_path_another_extension_also_claims(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install([str(hello_tree(tmp_path))], root)
    record_path = root / STATE / "extensions" / "hello.json"
    record = json.loads(record_path.read_text())
    (root / STATE / "extensions" / "other.json").write_text(
        json.dumps({**record, "name": "other", "files": [SERVICE]})
    )
    with pytest.raises(ExtensionError, match=f"/{SERVICE} is claimed by the extension 'other' too"):
        remove("hello", root)
    assert (root / SERVICE).exists()


def test_manifest_errors_are_located(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path / "tree", {SERVICE: "x"},
        "version: v1alpha2\nmetadata:\n  name: bad name\n  version: 1\n  author: me\n",
    )  # fmt: skip
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ManifestError) as caught:
        install([str(tree)], root)
    headlines = [d.headline() for d in caught.value.diagnostics]
    assert headlines == [
        f"{tree}/manifest.yaml:1:10: error: version: unsupported manifest version "
        "('v1alpha2'): Talos reads only 'v1alpha1'",
        f"{tree}/manifest.yaml:3:3: error: metadata: metadata.description is required",
        f"{tree}/manifest.yaml:3:9: error: metadata.name: an extension name is letters, digits, "
        "'-', '_' and '.', at most 128, and starts with a letter or a digit",
    ]
    code, output = run("extension", "install", str(tree), "--root", str(root))
    assert code == 1
    assert "    version: v1alpha2\n             ^" in output
    assert output.endswith("extsvc: nothing installed\n")
    assert snapshot(root) == {}


def test_compatibility_is_enforced_only_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tree = hello_tree(tmp_path)
    with pytest.raises(
        ExtensionError, match=re.escape("hello 1.0.0 needs Talos '>= v1.5.0', not v1.4.8")
    ):
        install([str(tree)], root, InstallOptions(talos_version="v1.4.8"))
    assert snapshot(root) == {}
    install([str(tree)], root, InstallOptions(talos_version="v1.10.3"))
    code, output = run(
        "extension", "install", str(tree), "--root", str(root), "--talos-version", "1.x"
    )
    assert code == 1
    assert "--talos-version '1.x': not a version such as v1.10.3" in output


def test_an_image_never_writes_extsvcs_own_records(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install([str(hello_tree(tmp_path))], root)
    forged = make_tree(
        tmp_path / "forger", {f"{STATE}/extensions/hello.json": "{}"}, manifest_yaml("forger")
    )
    before = snapshot(root)
    with pytest.raises(ExtensionError, match="may not write into extsvc's own records"):
        install([str(forged)], root)
    assert snapshot(root) == before


def test_a_record_naming_a_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "victim").write_text("precious")
    install([str(hello_tree(tmp_path))], root)
    record_path = root / STATE / "extensions" / "hello.json"
    record = json.loads(record_path.read_text())
    record["files"].append("../victim")
    record_path.write_text(json.dumps(record))
    with pytest.raises(ExtensionError, match="files must be a list of paths inside the root"):
        remove("hello", root)
    assert (tmp_path / "victim").read_text() == "precious"


def test_an_upgrade_can_turn_a_file_into_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    install([str(hello_tree(tmp_path, "1.0.0", {"usr/local/share/thing": "a file"}))], root)
    install([str(hello_tree(tmp_path, "2.0.0", {"usr/local/share/thing/inside": "x"}))], root)
    assert (root / "usr/local/share/thing/inside").read_text() == "x"
    (record,) = installed(root)
    assert "usr/local/share/thing/inside" in record["files"]
    assert "usr/local/share/thing" in record["directories"]
    remove("hello", root)
    assert not (root / "usr/local/share").exists()


@pytest.mark.root
def test_a_transaction_refused_half_way_is_undone_at_once(tmp_path: Path) -> None:
    """A file for another filesystem than the one of ROOT/usr/local/lib/extsvc (where
    staging is) cannot be renamed there: the service file already moved into
    usr/local/etc goes back before the error is reported."""
    root = tmp_path / "root"
    mount = root / "usr/local/lib/containers"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        before = snapshot(root)
        with pytest.raises(ExtensionError, match="is on another filesystem than"):
            install([str(hello_tree(tmp_path))], root)
        assert snapshot(root) == before
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.root
def test_a_read_only_root_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(root)], check=True)
    try:
        code, output = run("extension", "install", str(hello_tree(tmp_path)), "--root", str(root))
        assert code == 1
        assert output.startswith(f"extsvc: cannot write under {root}: ")
        assert "Read-only file system" in output
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
