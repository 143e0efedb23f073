"""Build: every service's config.json and the plan, as Python values, from the table.

The second of the two passes (STYLE point 3): each service is built against the
table of all of them. The plan pins the sha256 of each config.json's canonical
bytes, so configs are serialised here, once; ``compiler.render`` reuses those bytes.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from extsvc.compiler.model import Service
from extsvc.compiler.oci import BuildContext, BuiltConfig, Origin, build_config
from extsvc.compiler.packagedata import SECCOMP_DIR, read_json
from extsvc.compiler.plan import build_plan
from extsvc.compiler.render import canonical_json
from extsvc.compiler.resolve import ServiceTable
from extsvc.compiler.sources import SourceFile


@cache
def seccomp_profile(arch: str) -> dict[str, Any]:
    return read_json(SECCOMP_DIR / f"default-{arch}.json")


@dataclass(frozen=True)
class CompileOptions:
    rootfs_base: str
    arch: str
    # `compile --annotate`: each spec names its source file and that file's digest.
    annotate: bool = False


# OCI annotation keys (reverse domain notation, as the runtime-spec asks).
ANNOTATION_SOURCE = "io.extsvc.source"
ANNOTATION_SOURCE_DIGEST = "io.extsvc.source.digest"


def _annotate(built: BuiltConfig, service: Service, data: bytes) -> None:
    """Name the service file (base name, as plan.json does) and its sha256 in the spec."""
    built.config["annotations"] = {
        ANNOTATION_SOURCE: posixpath.basename(service.file.replace("\\", "/")),
        ANNOTATION_SOURCE_DIGEST: "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    built.origins["annotations"] = Origin("extsvc compile --annotate (service file and digest)")


@dataclass(frozen=True)
class BuiltOutput:
    table: ServiceTable
    configs: Mapping[str, BuiltConfig]  # service name -> config.json and its origins
    config_bytes: Mapping[str, bytes]  # service name -> canonical config.json
    plan: dict[str, Any]


def build(
    table: ServiceTable, options: CompileOptions, sources: Sequence[SourceFile]
) -> BuiltOutput:
    """``sources`` are read only by ``--annotate`` (each spec names its file's digest)."""
    context = BuildContext(options.rootfs_base, seccomp_profile(options.arch))
    configs = {s.name: build_config(s, context) for s in table.services.values()}
    if options.annotate:
        source_bytes = {source.name: source.data for source in sources}
        for service in table.services.values():
            _annotate(configs[service.name], service, source_bytes[service.file])
    config_bytes = {name: canonical_json(built.config) for name, built in configs.items()}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in config_bytes.items()}
    plan = build_plan(table, digests, rootfs_base=options.rootfs_base, arch=options.arch)
    return BuiltOutput(table, configs, config_bytes, plan)
