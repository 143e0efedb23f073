"""Write: replace the directory OUT with exactly the rendered files (compile's only I/O out).

* Atomic: the files go into a fresh staging directory beside OUT, which then takes OUT's
  place in one ``renameat2(RENAME_EXCHANGE)``; the previous tree, now under the staging
  name, is removed afterwards. Where the kernel or filesystem refuses the exchange
  (EINVAL, ENOSYS), two renames are used, and a failure between them puts OUT back.
* Crash-safe: a compile killed half-way leaves only ``.OUT.new-*``/``.OUT.old-*``
  directories beside OUT, never a partial OUT; the next compile into OUT removes them.
  Compiles into the same parent directory hold a lock on it, so one never removes
  another's staging directory.
* Private: specs carry environment values, so directories are 0700 and files 0600.
* Symlinks are never followed: files are created with ``openat(O_CREAT|O_EXCL|
  O_NOFOLLOW)`` in a staging directory nobody else knows, and nothing is ever written
  inside the existing OUT, so a symlink planted there cannot redirect a write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from extsvc.compiler.format.plan import PLAN_FILE

FILE_MODE = 0o600
DIR_MODE = 0o700
RENAME_EXCHANGE = 2
# renameat2(2) has no wrapper in Python's os module; its number per architecture.
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


class OutputError(Exception):
    """OUT cannot be written (exists and is not ours, permissions, disk full)."""


def _staging_prefixes(out: Path) -> tuple[str, str]:
    return f".{out.name}.new-", f".{out.name}.old-"


def _is_previous_output(out: Path) -> bool:
    return out.is_dir() and (not any(out.iterdir()) or (out / PLAN_FILE).is_file())


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    """Replace directory ``out`` with exactly ``files`` (relative path -> bytes), atomically."""
    out = out.resolve()
    if out.parent == out:
        raise OutputError("refusing to write output to /")
    if out.exists() and not _is_previous_output(out):
        raise OutputError(
            f"{out} exists and is not an extsvc output directory (no {PLAN_FILE}); "
            "refusing to replace it"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _locked(out.parent) as parent_fd:
            _remove_stale(out, parent_fd)
            _write_and_swap(files, out, parent_fd)
    except PermissionError:
        raise  # said as every command says it (extsvc.cli), with exit 3
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from error


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[int]:
    """An fd of ``directory``, locked against other compiles writing beside it."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _remove_stale(out: Path, parent_fd: int) -> None:
    """Staging and retired trees of earlier compiles that were killed before cleaning up
    (we hold the lock, so none of them belongs to a compile still running)."""
    prefixes = _staging_prefixes(out)
    for entry in os.scandir(parent_fd):
        if entry.name.startswith(prefixes) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.name, dir_fd=parent_fd)


def _write_and_swap(files: Mapping[str, bytes], out: Path, parent_fd: int) -> None:
    new_prefix, old_prefix = _staging_prefixes(out)
    staging = Path(tempfile.mkdtemp(prefix=new_prefix, dir=out.parent))  # 0700
    try:
        _write_files(files, staging)
        if out.exists():
            _swap(staging.name, out.name, old_prefix, parent_fd)
        else:
            os.rename(staging.name, out.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    finally:
        # After a successful exchange the staging name holds the previous tree.
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging.name, dir_fd=parent_fd)


def _write_files(files: Mapping[str, bytes], staging: Path) -> None:
    root = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for relative, data in sorted(files.items()):
            *folders, name = relative.split("/")
            directory = _make_dirs(root, folders)
            try:
                _write_file(directory, name, data)
            finally:
                if directory != root:
                    os.close(directory)
    finally:
        os.close(root)


def _make_dirs(root: int, folders: list[str]) -> int:
    """An fd of ``root/folders...``, each made (0700) if missing, none a symlink."""
    fd = root
    for folder in folders:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, DIR_MODE, dir_fd=fd)
        child = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        if fd != root:
            os.close(fd)
        fd = child
    return fd


def _write_file(directory: int, name: str, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, FILE_MODE, dir_fd=directory)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def _swap(staging: str, out: str, old_prefix: str, parent_fd: int) -> None:
    """Put ``staging`` where ``out`` is; afterwards ``staging`` names the previous tree."""
    try:
        exchange(parent_fd, staging, out)
        return
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    # No atomic exchange here: two renames, and OUT put back if the second fails.
    retired = old_prefix + os.urandom(6).hex()
    os.rename(out, retired, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    try:
        os.rename(staging, out, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except OSError:
        os.rename(retired, out, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        raise
    os.rename(retired, staging, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)


def exchange(dir_fd: int, first: str, second: str) -> None:
    """Atomically swap two names in ``dir_fd`` (renameat2 with RENAME_EXCHANGE)."""
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(
        ctypes.c_long(number),
        ctypes.c_int(dir_fd),
        os.fsencode(first),
        ctypes.c_int(dir_fd),
        os.fsencode(second),
        ctypes.c_uint(RENAME_EXCHANGE),
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
