"""Build: every service's config.json and the plan, as Python values, from the table.

The second of the two passes (``compiler.resolve`` is the first): each service is built against the
table of all of them. The plan pins the sha256 of each config.json's canonical
bytes, so configs are serialised here, once; ``compiler.render`` reuses those bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from extsvc.compiler.canonical import canonical_json
from extsvc.compiler.format.enventries import is_dropped
from extsvc.compiler.format.plan import bundle_dir, sha256_digest, source_basename
from extsvc.compiler.format.serviceids import service_id
from extsvc.compiler.model import Service
from extsvc.compiler.oci import BuildContext, BuiltConfig, Origin, build_config
from extsvc.compiler.packagedata import SECCOMP_DIR, read_json
from extsvc.compiler.plan_builder import build_plan
from extsvc.compiler.resolve import ServiceTable
from extsvc.compiler.sources import SourceFile

if TYPE_CHECKING:
    # Imported when there are documents to bake in (--service-config), not before.
    from extsvc.compiler.format.extconfig import ServiceConfig


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
        ANNOTATION_SOURCE: source_basename(service.file),
        ANNOTATION_SOURCE_DIGEST: sha256_digest(data),
    }
    built.origins["annotations"] = Origin("extsvc compile --annotate (service file and digest)")


def _with_config(built: BuiltConfig, config: ServiceConfig) -> tuple[BuiltConfig, dict[str, bytes]]:
    """The built config with an ExtensionServiceConfig baked in: its files bind-mounted
    from the bundle (``config/<flattened mountPath>``, relative: OUT stays relocatable);
    and those files (relative output path -> content)."""
    from extsvc.compiler.format.extconfig import bundle_source, configure_spec

    spec = configure_spec(built.config, config=config, source_for=bundle_source)
    origins = dict(built.origins)
    first = len(built.config.get("mounts", []))
    for index in range(len(config.files)):
        field_path = ("configFiles", index, "mountPath")
        origins[f"mounts[{first + index}]"] = Origin(
            f"ExtensionServiceConfig {config.name} configFiles[{index}]",
            config.source_map.file,
            config.source_map.value_position(field_path),
        )
    # The document's entries follow the service's own (entries without '=' are dropped).
    position = len(built.config.get("process", {}).get("env", []))
    for index, entry in enumerate(config.environment):
        if not is_dropped(entry):
            origins[f"process.env[{position}]"] = Origin(
                f"ExtensionServiceConfig {config.name} environment[{index}]",
                config.source_map.file,
                config.source_map.value_position(("environment", index)),
            )
            position += 1
    files = {
        f"{bundle_dir(config.name)}/{bundle_source(config_file)}": config_file.content.encode()
        for config_file in config.files
    }
    return BuiltConfig(spec, origins), files


@dataclass(frozen=True)
class BuiltOutput:
    table: ServiceTable
    configs: Mapping[str, BuiltConfig]  # service name -> config.json and its origins
    config_bytes: Mapping[str, bytes]  # service name -> canonical config.json
    plan: dict[str, Any]
    # Baked ExtensionServiceConfig files: relative output path -> content (secrets).
    config_files: Mapping[str, bytes] = field(default_factory=dict)


def build(
    table: ServiceTable,
    options: CompileOptions,
    sources: Sequence[SourceFile],
    service_configs: Mapping[str, ServiceConfig] | None = None,
) -> BuiltOutput:
    """``sources`` are read only by ``--annotate`` (each spec names its file's digest);
    ``service_configs`` (by service name) are baked into their bundles."""
    context = BuildContext(options.rootfs_base, seccomp_profile(options.arch))
    configs = {s.name: build_config(s, context) for s in table.services.values()}
    baked = service_configs or {}
    config_files: dict[str, bytes] = {}
    for name, config in baked.items():
        configs[name], files = _with_config(configs[name], config)
        config_files.update(files)
    if options.annotate:
        source_bytes = {source.name: source.data for source in sources}
        for service in table.services.values():
            _annotate(configs[service.name], service, source_bytes[service.file])
    config_bytes = {name: canonical_json(built.config) for name, built in configs.items()}
    digests = {name: sha256_digest(data) for name, data in config_bytes.items()}
    plan = build_plan(table, digests, rootfs_base=options.rootfs_base, arch=options.arch)
    for name in baked:
        # Baked into the bundle: there is nothing left to wait for at boot.
        plan["services"][service_id(name)]["depends"]["configuration"] = False
    return BuiltOutput(table, configs, config_bytes, plan, config_files)
