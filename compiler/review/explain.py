"""Explain: every field of a service's config.json with where it came from.

The origins are the ones ``compiler.oci`` records while it builds each field
(``BuiltConfig.origins``), never reconstructed afterwards. ``compile`` writes
them (``compiler.render.origins_document``) beside each bundle as
``bundles/<name>/origins.json``, which is why ``extsvc explain OUT ext-x`` needs
nothing but OUT:

* the sources are often not there when a spec is reviewed (a CI artifact, an
  image being inspected), and the plan keeps only each source's file name;
* recompiling whatever sources are at hand could explain a spec other than the
  one in OUT; ``origins.json`` names the sha256 of the exact config.json it
  describes, and ``explain`` refuses a pair that does not match;
* config.json stays byte-identical, pure OCI (extsvc's own data beside it,
  not inside it); the runtime never reads origins.json.

Origins name the service file by its base name (as plan.json does), so OUT is
the same bytes wherever it is compiled from. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from extsvc.compiler.format.diagnostics import mask_entry
from extsvc.compiler.format.plan import PLAN_API_VERSION
from extsvc.compiler.review.diff.changes import one_line
from extsvc.compiler.review.diff.seccomp import syscall_fates

# The order a reader expects (the runtime-spec's), rather than the file's sorted keys.
SECTION_ORDER = ("ociVersion", "process", "root", "mounts", "linux")

# Fields the YAML removes on purpose, in words.
ABSENT_WORDS = {
    "root.readonly": "absent: the rootfs is writable",
    "linux.maskedPaths": "absent: no path is masked",
    "linux.readonlyPaths": "absent: no path is read-only",
}

# What the executor may change at start on a host that cannot grant the spec
# (executor.runtime.adapt, executor.runtime.runc): said beside the field, since it is not in OUT.
HOST_ADAPTATIONS = {
    "process.capabilities": "host adaptation (executor): only capabilities in the executor's "
    "own bounding set are granted",
    "process.oomScoreAdj": "host adaptation (executor): left out when the host cannot lower "
    "the OOM score (no CAP_SYS_RESOURCE)",
    "root.path": "host adaptation (executor): runs on an ephemeral overlay of this directory",
}


@dataclass(frozen=True)
class Row:
    field: str
    value: Any  # JSON (environment values masked)
    shown: str  # the value as one short line
    origin: Mapping[str, Any] | None  # the origins.json entry, None if none was recorded
    note: str | None = None

    @property
    def where(self) -> str:
        """``file.yaml:line:col``, ``default (containerd)``, ``default (Talos)`` or ``extsvc``."""
        if self.origin is None:
            return "(no origin recorded)"
        kind = self.origin.get("origin")
        if kind == "file":
            return f"{self.origin['file']}:{self.origin['line']}:{self.origin['col']}"
        if kind == "containerd":
            return "default (containerd)"
        if kind == "talos":
            return "default (Talos)"
        return "extsvc"


def _mount_words(mount: Mapping[str, Any]) -> str:
    options = ",".join(mount.get("options") or ())
    words = f"{mount.get('destination')} {mount.get('type', '-')} {mount.get('source', '-')}"
    return f"{words} [{options}]" if options else words


def _seccomp_words(profile: Mapping[str, Any]) -> str:
    default, fates = syscall_fates(profile)
    allowed = sum(1 for fate in fates.values() if fate == "SCMP_ACT_ALLOW")
    conditional = len(fates) - allowed
    rules = len(profile.get("syscalls") or ())
    return (
        f"{rules} rules: {allowed} syscalls allowed, {conditional} with conditions, "
        f"the rest {default}"
    )


def _capability_words(capabilities: Mapping[str, Any]) -> str:
    by_names: dict[tuple[str, ...], list[str]] = {}
    for set_name, names in capabilities.items():
        by_names.setdefault(tuple(sorted(names)), []).append(set_name)
    parts = [f"{len(names)} in {', '.join(sets)}" for names, sets in by_names.items()]
    return "; ".join(parts)


def _values(config: Mapping[str, Any], show_values: bool) -> Iterator[tuple[str, Any, str]]:
    """(field path, value, one-line text) for every field, at explain's granularity."""
    known = [key for key in SECTION_ORDER if key in config]
    for key in [*known, *sorted(set(config) - set(known))]:
        value = config[key]
        if key == "mounts":
            for index, mount in enumerate(value):
                yield f"mounts[{index}]", mount, _mount_words(mount)
        elif isinstance(value, dict):
            yield from _section(key, value, show_values)
        else:
            yield key, value, one_line(value)


def _section(
    prefix: str, section: Mapping[str, Any], show_values: bool
) -> Iterator[tuple[str, Any, str]]:
    for key in sorted(section):
        path = f"{prefix}.{key}"
        value = section[key]
        if path == "process.env":
            for index, entry in enumerate(value):
                shown = entry if show_values else mask_entry(entry)
                yield f"{path}[{index}]", shown, one_line(shown, 80)
        elif path == "process.capabilities":
            yield path, value, _capability_words(value)
        elif path == "linux.seccomp":
            yield path, value, _seccomp_words(value)
        elif isinstance(value, dict) and path != "process.user":
            yield from _section(path, value, show_values)
        else:
            yield path, value, one_line(value)


def _lookup(path: str, fields: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The origin recorded for ``path`` or, failing that, for its nearest ancestor."""
    candidate = path
    while candidate:
        if candidate in fields:
            entry: Mapping[str, Any] = fields[candidate]
            return entry
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
    return None


def explain_config(
    config: Mapping[str, Any], origins: Mapping[str, Any], *, show_values: bool = False
) -> list[Row]:
    """One row per field of ``config``, plus fields Talos leaves out on purpose (absent)."""
    fields: Mapping[str, Any] = origins.get("fields", {})
    rows: list[Row] = []
    seen: set[str] = set()
    for path, value, shown in _values(config, show_values):
        seen.add(path)
        rows.append(Row(path, value, shown, _lookup(path, fields), HOST_ADAPTATIONS.get(path)))
    for path in sorted(fields):
        # Recorded but not written: writeableRootfs drops root.readonly, [] drops maskedPaths.
        if path not in seen and not any(s.startswith((path + ".", path + "[")) for s in seen):
            rows.append(Row(path, None, ABSENT_WORDS.get(path, "absent"), fields[path]))
    return rows


def render_text(service_id: str, source: str, rows: list[Row]) -> str:
    """A table: field, where it came from, value (descriptions are in the JSON output)."""
    lines = [f"{service_id} (from {source})"]
    field_width = max(len(row.field) for row in rows)
    where_width = max(len(row.where) for row in rows)
    for row in rows:
        lines.append(f"  {row.field:<{field_width}}  {row.where:<{where_width}}  {row.shown}")
        if row.note:
            lines.append(f"  {'':<{field_width}}  ↳ {row.note}")
    return "\n".join(lines) + "\n"


def to_json(service_id: str, source: str, digest: str, rows: list[Row]) -> dict[str, Any]:
    return {
        "apiVersion": PLAN_API_VERSION,
        "kind": "Explain",
        "service": service_id,
        "source": source,
        "config": digest,
        "fields": [
            {
                "field": row.field,
                "value": row.value,
                "origin": row.where,
                "description": row.origin.get("description") if row.origin else None,
                "note": row.note,
            }
            for row in rows
        ],
    }
