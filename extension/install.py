"""The API of ``extsvc extension``: install, list, remove (the CLI only prints and exits).

``install`` unpacks and checks every SOURCE first, each into its own staging directory:
a refused image (bad manifest, a member against the rules, a wrong digest) leaves the
root untouched. Then each image is committed in turn (store.run_transaction); a second
install of a name is an upgrade, one transaction too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.extension.errors import ExtensionError, ManifestError
from extsvc.extension.manifest import (
    MANIFEST_FILE,
    Manifest,
    parse_manifest,
    parse_version,
    satisfies,
)
from extsvc.extension.members import ROOTFS, Kind
from extsvc.extension.sources import open_image
from extsvc.extension.store import (
    SERVICES_DIR,
    STATE_DIR,
    Layout,
    inside_state,
    locked,
    new_staging,
    read_records,
    recover,
    resolve_in_root,
    run_transaction,
)
from extsvc.extension.streams import Limits
from extsvc.extension.unpack import Unpacked, unpack

RECORD_VERSION = 1


@dataclass(frozen=True)
class InstallOptions:
    limits: Limits = field(default_factory=Limits)
    # Enforce each manifest's compatibility.talos.version against this Talos version.
    talos_version: str | None = None


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    previous: str | None  # the version it replaced (an upgrade), None for a new one
    files: int
    services: tuple[str, ...]


@dataclass
class _Staged:
    source: str
    kind: str
    digest: str | None
    transaction: str
    staging: Path
    unpacked: Unpacked
    manifest: Manifest


def _check_root(root: Path) -> Path:
    if not root.is_dir():
        raise ExtensionError(f"{root}: the root is not a directory")
    return root.resolve()


@contextlib.contextmanager
def _writing(root: Path) -> Iterator[None]:
    """An OSError of the root (read-only, full) as a refusal to report; a permission
    denied is not a refusal but this user lacking a right, said by the dispatcher."""
    try:
        yield
    except PermissionError:
        raise  # no right to write there: said as every command says it (extsvc.cli), exit 3
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        raise ExtensionError(
            f"cannot write under {root}:{where}: {error.strerror or error}"
        ) from None


def install(
    sources: Sequence[str], root: Path, options: InstallOptions | None = None
) -> list[Installed]:
    """Install every SOURCE under ``root``; raises ExtensionError (ManifestError) on refusal."""
    with _writing(root):
        return _install(sources, root, options)


def _install(sources: Sequence[str], root: Path, options: InstallOptions | None) -> list[Installed]:
    options = options or InstallOptions()
    talos = _talos_version(options.talos_version)
    layout = Layout(_check_root(root))
    staged: list[_Staged] = []
    results: list[Installed] = []
    with locked(layout):
        try:
            for source in sources:
                staged.append(_stage(layout, source, options, talos))
            _check_set(staged)
            for item in staged:
                results.append(_commit(layout, item))
        finally:
            for item in staged:
                shutil.rmtree(item.staging, ignore_errors=True)
    return results


def _talos_version(text: str | None) -> tuple[int, int, int, tuple[str, ...]] | None:
    if text is None:
        return None
    version = parse_version(text)
    if version is None:
        raise ExtensionError(f"--talos-version {text!r}: not a version such as v1.10.3")
    return version


def _stage(layout: Layout, source: str, options: InstallOptions, talos: Any) -> _Staged:
    image = open_image(source)
    transaction, staging = new_staging(layout)
    try:
        unpacked = unpack(image, staging / "image", options.limits)
        manifest = _manifest(source, unpacked)
        if talos is not None and not satisfies(manifest.compatibility, talos):
            raise ExtensionError(
                f"{source}: {manifest.name} {manifest.version} needs Talos "
                f"{manifest.compatibility!r}, not {options.talos_version}"
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        image.close()
    return _Staged(source, image.kind, image.digest, transaction, staging, unpacked, manifest)


def _manifest(source: str, unpacked: Unpacked) -> Manifest:
    # Talos's Load: both parts are required.
    if unpacked.manifest is None:
        raise ExtensionError(f"{source}: the image has no {MANIFEST_FILE}")
    if unpacked.index.kind(ROOTFS) is not Kind.DIR:
        raise ExtensionError(f"{source}: the image has no {ROOTFS}/ directory")
    manifest, problems = parse_manifest(f"{source}/{MANIFEST_FILE}", unpacked.manifest)
    if manifest is None:
        raise ManifestError(problems)
    return manifest


def _shipped(item: _Staged) -> list[tuple[str, Kind]]:
    """The image's rootfs entries, root-relative (``usr/local/...``), parents first."""
    prefix = ROOTFS + "/"
    return [
        (path[len(prefix) :], kind)
        for path, kind in item.unpacked.index.walk()
        if path.startswith(prefix)
    ]


def _check_set(staged: list[_Staged]) -> None:
    """Two images of one command may not have one name or ship one file."""
    names: dict[str, str] = {}
    files: dict[str, str] = {}
    for item in staged:
        first = names.setdefault(item.manifest.name, item.source)
        if first != item.source:
            raise ExtensionError(f"{item.source} and {first} are both {item.manifest.name!r}")
        for path, kind in _shipped(item):
            if kind is Kind.DIR:
                continue
            other = files.setdefault(path, item.source)
            if other != item.source:
                raise ExtensionError(f"{item.source} and {other} both ship /{path}")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _commit(layout: Layout, item: _Staged) -> Installed:
    records = read_records(layout)
    name = item.manifest.name
    old = records.get(name)
    owners = {
        path: other
        for other, record in records.items()
        if other != name
        for path in record["files"]
    }
    old_files = set(old["files"]) if old else set()
    old_dirs = set(old["directories"]) if old else set()
    # Directories an extension made are shared by those that use them: the last one
    # removed takes them away.
    made_by_extensions = {d for record in records.values() for d in record["directories"]}
    ops: list[list[str]] = []
    backups: list[list[str]] = []
    files: list[str] = []
    directories: list[str] = []
    moved: dict[str, str] = {}  # a directory the root lacks, moved whole: rel -> resolved
    backed_up: set[str] = set()
    for rel, kind in _shipped(item):
        parent = next((m for m in _ancestors(rel) if m in moved), None)
        if parent is not None:
            resolved = moved[parent] + rel[len(parent) :]
            (directories if kind is Kind.DIR else files).append(resolved)
            continue
        resolved = resolve_in_root(layout.root, rel)
        if inside_state(resolved) or inside_state(rel):
            raise ExtensionError(
                f"{item.source}: /{rel}: an image may not write into extsvc's own records "
                f"(/{STATE_DIR})"
            )
        existing = _lstat(layout.root / resolved)
        old_file = existing is not None and not stat.S_ISDIR(existing.st_mode)
        if kind is Kind.DIR and old_file and resolved in old_files:
            # The old version's file is the new one's directory.
            backups.append(["backup", resolved, str(len(backups))])
            backed_up.add(resolved)
            existing = None
        if kind is Kind.DIR and existing is None:
            moved[rel] = resolved
            directories.append(resolved)
            ops.append(["place", f"{ROOTFS}/{rel}", resolved])
        elif kind is Kind.DIR and stat.S_ISDIR(existing.st_mode):  # type: ignore[union-attr]
            if resolved in made_by_extensions:
                directories.append(resolved)
        elif kind is Kind.DIR and stat.S_ISLNK(existing.st_mode) and _is_dir(layout, resolved):  # type: ignore[union-attr]
            continue  # the root's own link to a directory (/lib -> usr/lib): go through it
        else:
            if existing is not None:
                if stat.S_ISDIR(existing.st_mode) or resolved not in old_files:
                    raise ExtensionError(_conflict(item, rel, resolved, existing, owners))
                backups.append(["backup", resolved, str(len(backups))])
            files.append(resolved)
            ops.append(["place", f"{ROOTFS}/{rel}", resolved])
    for path in sorted(old_files - set(files) - backed_up):
        if _lstat(layout.root / path) is not None:
            backups.append(["backup", path, str(len(backups))])
    services = sorted(
        path.rpartition("/")[2].removesuffix(".yaml")
        for path in files
        if path.rpartition("/")[0] == SERVICES_DIR and path.endswith(".yaml")
    )
    record = {
        "recordVersion": RECORD_VERSION,
        **item.manifest.to_json(),
        "source": item.source,
        "sourceKind": item.kind,
        "digest": item.digest,
        "files": sorted(files),
        "directories": sorted(set(directories)),
        "services": services,
        "transaction": item.transaction,
    }
    journal = {
        "id": item.transaction,
        "kind": "install",
        "name": name,
        "ops": backups + ops,  # the old out of the way first
        "record": record,
        "emptied": sorted(old_dirs - set(directories)),
    }
    run_transaction(layout, journal)
    return Installed(
        name, item.manifest.version, old["version"] if old else None, len(files), tuple(services)
    )


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _is_dir(layout: Layout, resolved: str) -> bool:
    target = resolve_in_root(layout.root, resolved + "/.")
    return (layout.root / target.rpartition("/")[0]).is_dir()


def _conflict(
    item: _Staged, rel: str, resolved: str, existing: os.stat_result, owners: dict[str, str]
) -> str:
    where = f"/{resolved}" + (f" (as /{rel})" if rel != resolved else "")
    owner = owners.get(resolved)
    if owner is not None:
        return f"{item.source}: {where} belongs to the extension {owner!r}; remove it first"
    what = "a directory" if stat.S_ISDIR(existing.st_mode) else "a file"
    return (
        f"{item.source}: {where} is already there, {what} no extension installed; "
        "extsvc does not overwrite it"
    )


def installed(root: Path) -> list[dict[str, Any]]:
    """The records of the extensions installed under ``root``, by name."""
    layout = Layout(_check_root(root))
    return [records for _, records in sorted(read_records(layout).items())]


def pending(root: Path) -> bool:
    """Whether a killed transaction waits to be finished or undone (by the next install
    or remove)."""
    return Layout(_check_root(root)).journal.exists()


def remove(name: str, root: Path) -> dict[str, Any]:
    """Remove exactly the files the extension ``name`` installed; its record is returned."""
    with _writing(root):
        return _remove(name, root)


def _remove(name: str, root: Path) -> dict[str, Any]:
    layout = Layout(_check_root(root))
    with locked(layout):
        records = read_records(layout)
        record = records.get(name)
        if record is None:
            known = ", ".join(sorted(records)) or "none"
            raise ExtensionError(
                f"no extension {name!r} is installed under {root} (installed: {known})"
            )
        for other, theirs in records.items():
            shared = set(theirs["files"]) & set(record["files"]) if other != name else set()
            if shared:
                raise ExtensionError(
                    f"{name}: /{min(shared)} is claimed by the extension {other!r} too; "
                    "refusing to remove it"
                )
        transaction, _ = new_staging(layout)
        ops = [
            ["backup", path, str(number)]
            for number, path in enumerate(record["files"])
            if _lstat(layout.root / path) is not None
        ]
        journal = {
            "id": transaction,
            "kind": "remove",
            "name": name,
            "ops": ops,
            "emptied": record["directories"],
        }
        run_transaction(layout, journal)
    return record


__all__ = ["InstallOptions", "Installed", "install", "installed", "pending", "recover", "remove"]
