"""What is installed under a root, and the transactions that change it.

Layout, under ``ROOT/usr/local/lib/extsvc/``:

* ``extensions/<name>.json``: the record of one installed extension (its manifest, its
  source and digest, every file it installed, the directories it created, its services).
* ``journal.json``: the transaction under way, if any (written before the first change).
* ``staging/<id>/``: a transaction's unpacked image (``image/``) and the files it moved
  out of the way (``backup/``); on the same filesystem as the records.
One transaction at a time: each holds a flock on the root directory.

A transaction only renames: the old files of an upgrade (or of a removal) are moved
into ``backup/``, then the new ones are moved in from ``image/`` (a directory the root
does not have yet moves whole, in one rename). Writing the record (install) or removing
it (remove) is the commit point. A transaction killed before that is rolled back by the
next one (every rename undone, found from the journal and what exists), one killed
after it is finished; either way the leftovers of ``staging/`` are removed.

Paths in the root are resolved as if the root were ``/``: a directory symlink of the
root's own tree (``/lib -> usr/lib``) is followed, an absolute one relative to the root,
``..`` never above it; the last component is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.extension.errors import ExtensionError

STATE_DIR = "usr/local/lib/extsvc"
RECORDS = "extensions"
JOURNAL = "journal.json"
STAGING = "staging"
SERVICES_DIR = "usr/local/etc/containers"
MAX_SYMLINK_HOPS = 40


def resolve_in_root(root: Path, relative: str) -> str:
    """``relative`` (``lib/firmware/x``) as the root-relative path it names, its directories'
    symlinks followed inside ``root``; the last component is not followed."""
    *folders, last = [p for p in relative.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    pending = list(folders)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        except FileNotFoundError:
            is_link = False
        if not is_link:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise ExtensionError(f"{root}: too many symlinks resolving {relative!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = target.split("/") + pending
    return "/".join([*resolved, last])


def _plain_relative(path: object) -> bool:
    return (
        isinstance(path, str)
        and bool(path)
        and not path.startswith("/")
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def inside_state(resolved: str) -> bool:
    """Whether a root-relative path is extsvc's own state (records, journal, staging)."""
    return resolved == STATE_DIR or resolved.startswith(STATE_DIR + "/")


@dataclass
class Layout:
    root: Path
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.root / resolve_in_root(self.root, STATE_DIR)

    @property
    def records(self) -> Path:
        return self.state / RECORDS

    @property
    def journal(self) -> Path:
        return self.state / JOURNAL

    @property
    def staging(self) -> Path:
        return self.state / STAGING

    def record_path(self, name: str) -> Path:
        return self.records / f"{name}.json"


def read_records(layout: Layout) -> dict[str, dict[str, Any]]:
    """Every installed extension's record, by name."""
    records: dict[str, dict[str, Any]] = {}
    if not layout.records.is_dir():
        return records
    for path in sorted(layout.records.glob("*.json")):
        try:
            record = json.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            raise ExtensionError(f"{path}: unreadable extension record ({error})") from None
        if not isinstance(record, dict) or record.get("name") != path.stem:
            raise ExtensionError(f"{path}: not an extension record of {path.stem!r}")
        for key in ("files", "directories"):
            paths = record.get(key)
            if not isinstance(paths, list) or not all(map(_plain_relative, paths)):
                # remove acts on these paths: never one that leaves the root.
                raise ExtensionError(f"{path}: {key} must be a list of paths inside the root")
        records[path.stem] = record
    return records


def write_json(path: Path, document: Any) -> None:
    """``path`` replaced by ``document`` in one rename, synced (the commit point of a
    transaction is such a write)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, path)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """The root's transaction lock (a flock on the root directory itself, so that the
    state directory can come and go); a journal or staging left by a killed run is dealt
    with first. When nothing is installed afterwards, the state directories this call
    made are removed again: a refused install leaves the root exactly as it was."""
    fd = os.open(layout.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    made: list[Path] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for directory in (*reversed(layout.state.parents), layout.state, layout.records):
            if layout.root in directory.parents and not directory.exists():
                directory.mkdir(mode=0o755)
                made.append(directory)
        layout.staging.mkdir(mode=0o700, exist_ok=True)
        recover(layout)
        yield
    finally:
        try:
            if not layout.journal.exists() and not any(layout.records.glob("*.json")):
                own = [layout.staging, layout.records, layout.state]
                above = [d for d in made if d not in own]
                for directory in own + sorted(above, key=lambda d: len(d.parts), reverse=True):
                    with contextlib.suppress(OSError):
                        directory.rmdir()
        finally:
            os.close(fd)


def new_staging(layout: Layout) -> tuple[str, Path]:
    transaction = uuid.uuid4().hex[:16]
    directory = layout.staging / transaction
    directory.mkdir(mode=0o700)
    (directory / "image").mkdir(mode=0o700)
    (directory / "backup").mkdir(mode=0o700)
    return transaction, directory


# -- the transaction: a journal of renames, then the commit ---------------------------------


def _move(source: Path, target: Path) -> None:
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno == errno.EXDEV:
            raise ExtensionError(
                f"{target.parent} is on another filesystem than {source.parent}: extsvc "
                "installs only within the filesystem of ROOT/usr/local"
            ) from None
        raise


def run_transaction(layout: Layout, journal: dict[str, Any]) -> None:
    """Carry out ``journal`` (written first), commit it, clean up."""
    write_json(layout.journal, journal)
    staging = layout.staging / journal["id"]
    try:
        for operation, first, second in journal["ops"]:
            if operation == "backup":
                _move(layout.root / first, staging / "backup" / second)
            else:
                _move(staging / "image" / first, layout.root / second)
    except BaseException:
        # A rename refused half-way (another filesystem, a full disk): every one done
        # is undone now, as the next run would after a kill.
        _rollback(layout, journal)
        raise
    if journal["kind"] == "install":
        write_json(layout.record_path(journal["name"]), journal["record"])
    else:
        layout.record_path(journal["name"]).unlink()
        _sync_dir(layout.records)
    _finish(layout, journal)


def _committed(layout: Layout, journal: dict[str, Any]) -> bool:
    path = layout.record_path(journal["name"])
    if journal["kind"] == "remove":
        return not path.exists()
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("transaction") == journal["id"]


def _finish(layout: Layout, journal: dict[str, Any]) -> None:
    """After the commit: directories the extension no longer has, the staging, the journal."""
    for directory in sorted(journal.get("emptied", ()), key=lambda d: d.count("/"), reverse=True):
        with contextlib.suppress(OSError):  # not empty (another extension's files): kept
            os.rmdir(layout.root / directory)
    shutil.rmtree(layout.staging / journal["id"], ignore_errors=True)
    layout.journal.unlink(missing_ok=True)


def _rollback(layout: Layout, journal: dict[str, Any]) -> None:
    staging = layout.staging / journal["id"]
    for operation, first, second in reversed(journal["ops"]):
        if operation == "backup":
            saved, original = staging / "backup" / second, layout.root / first
            if os.path.lexists(saved) and not os.path.lexists(original):
                os.rename(saved, original)
        else:
            staged, placed = staging / "image" / first, layout.root / second
            if not os.path.lexists(staged) and os.path.lexists(placed):
                os.rename(placed, staged)
    shutil.rmtree(staging, ignore_errors=True)
    layout.journal.unlink(missing_ok=True)


def recover(layout: Layout) -> str | None:
    """Finish or undo a transaction a killed run left, remove stale staging; what was done."""
    done = None
    if layout.journal.exists():
        try:
            journal = json.loads(layout.journal.read_bytes())
        except ValueError:
            # Torn while being written: nothing was changed yet (it is written first).
            journal = None
        if journal is None:
            layout.journal.unlink()
        elif _committed(layout, journal):
            _finish(layout, journal)
            done = f"finished the interrupted {journal['kind']} of {journal['name']}"
        else:
            _rollback(layout, journal)
            done = f"rolled back the interrupted {journal['kind']} of {journal['name']}"
    if layout.staging.is_dir():
        for entry in layout.staging.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
    for folder in (layout.records, layout.state):
        for leftover in folder.glob(".*.json.*"):  # write_json's, torn
            leftover.unlink(missing_ok=True)
    return done
