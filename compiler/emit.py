"""Emit: canonical bytes, schema checks of what we produce, and atomic writes.

Canonical JSON is UTF-8, sorted keys, 2-space indent, one trailing newline:
the same model always gives the same bytes, so goldens and ``diff`` are exact.

Output is written into a fresh temporary directory beside OUT and renamed into
place only when every file is written, so an error leaves OUT as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import PLAN_FILE
from extsvc.compiler.format.schemacheck import SchemaError, Validator, compile_schema
from extsvc.compiler.format.schemas import validator
from extsvc.compiler.packagedata import oci_schemas_dir, read_json


class OutputError(Exception):
    """OUT cannot be written (exists and is not ours, permissions, disk full)."""


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# The runtime-spec schema lists only private/shared/slave/unbindable for
# rootfsPropagation, but runc maps the recursive forms too (rshared ->
# MS_SHARED|MS_REC) and Talos passes the YAML value straight through, so the
# faithful spec uses them. Checked against runc 1.1.5: rshared, rslave and
# rprivate start. Accept them here; the vendored files stay untouched.
RECURSIVE_PROPAGATION_MODES = ("rprivate", "rshared", "rslave", "runbindable")


@cache
def _oci_config_validator() -> Validator:
    documents = {path.name: read_json(path) for path in sorted(oci_schemas_dir().glob("*.json"))}
    propagation = documents["defs-linux.json"]["definitions"]["RootfsPropagation"]
    propagation["enum"] = [*propagation["enum"], *RECURSIVE_PROPAGATION_MODES]
    return compile_schema(documents["config-schema.json"], documents)


def oci_config_errors(config: Mapping[str, Any]) -> Iterator[SchemaError]:
    """Where ``config`` breaks the vendored OCI runtime-spec v1.3.0 schema (a bug if anywhere)."""
    return _oci_config_validator().iter_errors(config)


def plan_errors(plan: Mapping[str, Any]) -> Iterator[SchemaError]:
    return validator("plan").iter_errors(plan)


def _is_previous_output(out: Path) -> bool:
    return out.is_dir() and (not any(out.iterdir()) or (out / PLAN_FILE).is_file())


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    """Replace directory ``out`` with exactly ``files`` (relative path -> bytes), atomically."""
    out = out.resolve()
    if out.exists() and not _is_previous_output(out):
        raise OutputError(
            f"{out} exists and is not an extsvc output directory (no {PLAN_FILE}); "
            "refusing to replace it"
        )
    if out.parent == out:
        raise OutputError("refusing to write output to /")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as error:
        raise OutputError(f"cannot create {out}: {error.strerror}") from error
    try:
        for relative, data in sorted(files.items()):
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _normalise_modes(staging)
        _swap_into_place(staging, out)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from error


def _normalise_modes(root: Path) -> None:
    # mkdtemp makes 0700; bundles are read by the executor, possibly as another user.
    for directory, _, names in os.walk(root):
        os.chmod(directory, 0o755)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o644)


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, retired / "out")
    os.rename(staging, out)
    shutil.rmtree(retired, ignore_errors=True)
