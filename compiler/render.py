"""Render: the built output as the bytes of every file, and the schema checks of them.

Pure: no I/O. Every file is canonical JSON (``compiler.canonical``): the same model
always gives the same bytes, so goldens and ``diff`` are exact.
What we produce is checked against the vendored OCI runtime-spec schema and our plan
schema; a failure there is a bug in extsvc, reported as a diagnostic, never written.
Writing the files is ``compiler.write``'s job.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from extsvc.compiler.canonical import canonical_json
from extsvc.compiler.format.diagnostics import Diagnostic
from extsvc.compiler.format.plan import (
    CONFIG_FILE,
    ORIGINS_FILE,
    PLAN_API_VERSION,
    PLAN_FILE,
    bundle_dir,
    sha256_digest,
    source_basename,
)
from extsvc.compiler.format.schemacheck import SchemaError, Validator, compile_schema
from extsvc.compiler.format.schemas import validator
from extsvc.compiler.format.sourcemap import format_path
from extsvc.compiler.model import Service
from extsvc.compiler.oci import BuiltConfig, Origin
from extsvc.compiler.packagedata import oci_schemas_dir, read_json

if TYPE_CHECKING:
    from extsvc.compiler.build import BuiltOutput


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


def _origin_kind(origin: Origin) -> str:
    if origin.file is not None:
        return "file"
    if origin.description.startswith("containerd"):
        return "containerd"
    if origin.description.startswith("Talos"):
        return "talos"
    return "extsvc"


def origins_document(built: BuiltConfig, config_bytes: bytes) -> dict[str, Any]:
    """What compile writes to ``bundles/<name>/origins.json`` (canonical JSON)."""
    fields: dict[str, Any] = {}
    for path, origin in sorted(built.origins.items()):
        entry: dict[str, Any] = {"origin": _origin_kind(origin), "description": origin.description}
        if origin.file is not None and origin.position is not None:
            entry["file"] = source_basename(origin.file)
            entry["line"] = origin.position.line
            entry["col"] = origin.position.col
        fields[path] = entry
    return {
        "apiVersion": PLAN_API_VERSION,
        "kind": "Origins",
        "config": sha256_digest(config_bytes),
        "fields": fields,
    }


def _schema_bug(service: Service, what: str, errors: list[SchemaError]) -> Diagnostic:
    details = "; ".join(f"{format_path(e.path) or '(root)'}: {e.message}" for e in errors[:5])
    return service.source_map.diagnostic(
        ("name",),
        f"BUG in extsvc: the generated {what} breaks its schema ({details}); please report it",
    )


def render(output: BuiltOutput) -> tuple[dict[str, bytes], tuple[Diagnostic, ...]]:
    """Relative path -> bytes of every output file, and the schema bugs found (if any,
    nothing may be written)."""
    files: dict[str, bytes] = {}
    bugs: list[Diagnostic] = []
    for service in output.table.services.values():
        built = output.configs[service.name]
        errors = list(oci_config_errors(built.config))
        if errors:
            bugs.append(_schema_bug(service, CONFIG_FILE, errors))
        data = output.config_bytes[service.name]
        files[f"{bundle_dir(service.name)}/{CONFIG_FILE}"] = data
        # Where each field came from, for `extsvc explain` (never read by the runtime).
        origins = origins_document(built, data)
        files[f"{bundle_dir(service.name)}/{ORIGINS_FILE}"] = canonical_json(origins)
    plan_problems = list(plan_errors(output.plan))
    if plan_problems:
        first = next(iter(output.table.services.values()))
        bugs.append(_schema_bug(first, "plan.json", plan_problems))
    files[PLAN_FILE] = canonical_json(output.plan)
    files.update(output.config_files)
    return files, tuple(bugs)
