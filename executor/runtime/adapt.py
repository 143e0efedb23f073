"""Host adaptation: fit a faithful Talos spec to the host that has to run it.

The compiled config.json asks for what Talos asks for (39 capabilities,
``oomScoreAdj: -600``). A host may not be able to grant that: runc then refuses
to start the container at all. Talos itself grants only the capabilities that
are in machined's own bounding set ("grantable"); we do the same, and leave the
OOM score out when it cannot be lowered. Each change is reported as an
``Adaptation`` so the executor can record it as an event — never silently.

``adapt_spec`` is pure (host facts come in as a value) so it is tested without
a restricted host; ``HostFacts.probe`` reads the running process once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extsvc.compiler.format.capabilities import names_from_mask
from extsvc.executor.runtime.placement import CgroupPlacement

CAPABILITY_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


@dataclass(frozen=True)
class HostFacts:
    """What the running executor may hand down to a container."""

    bounding_capabilities: frozenset[str]
    # Lowering oom_score_adj below its current value needs CAP_SYS_RESOURCE.
    can_lower_oom_score: bool
    # Where the containers' cgroups go (inside the executor's systemd unit, or as compiled).
    cgroups: CgroupPlacement = field(default_factory=CgroupPlacement)

    @classmethod
    def probe(
        cls,
        status_path: Path = Path("/proc/self/status"),
        cgroups: CgroupPlacement | None = None,
    ) -> HostFacts:
        masks: dict[str, int] = {}
        for line in status_path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("CapBnd", "CapEff"):
                masks[key] = int(value.strip(), 16)
        bounding = names_from_mask(masks.get("CapBnd", 0))
        effective = names_from_mask(masks.get("CapEff", 0))
        return cls(
            bounding_capabilities=bounding,
            can_lower_oom_score="CAP_SYS_RESOURCE" in effective,
            cgroups=cgroups or CgroupPlacement(),
        )


@dataclass(frozen=True)
class Adaptation:
    """One change made to the spec for this host, worded for an event log."""

    field: str
    message: str


def adapt_spec(spec: dict[str, Any], host: HostFacts) -> tuple[dict[str, Any], list[Adaptation]]:
    """Return a copy of ``spec`` the host can run, and what was changed.

    The input is not modified: the compiled bundle stays what Talos asks for. Only
    what may change is copied (the spec, its ``process``, ``capabilities`` and
    ``linux``); the rest (mounts, seccomp: most of the spec) is shared with the input,
    read-only.
    """
    adapted = dict(spec)
    changes: list[Adaptation] = []
    linux = spec.get("linux")
    compiled_cgroup = linux.get("cgroupsPath") if isinstance(linux, dict) else None
    if isinstance(linux, dict) and isinstance(compiled_cgroup, str) and host.cgroups.parent:
        adapted["linux"] = {**linux, "cgroupsPath": host.cgroups.place(compiled_cgroup)}
        changes.append(Adaptation("linux.cgroupsPath", host.cgroups.describe(compiled_cgroup)))

    process: dict[str, Any] = {}
    if isinstance(spec.get("process"), dict):
        process = adapted["process"] = dict(spec["process"])

    capabilities = process.get("capabilities")
    if isinstance(capabilities, dict):
        capabilities = process["capabilities"] = dict(capabilities)
        dropped: set[str] = set()
        for set_name in CAPABILITY_SETS:
            requested = capabilities.get(set_name)
            if requested is None:
                continue
            kept = [name for name in requested if name in host.bounding_capabilities]
            dropped.update(name for name in requested if name not in host.bounding_capabilities)
            capabilities[set_name] = kept
        if dropped:
            changes.append(
                Adaptation(
                    field="process.capabilities",
                    message="host adaptation: not granting "
                    + ", ".join(sorted(dropped))
                    + " (not in the executor's bounding set)",
                )
            )

    oom_score_adj = process.get("oomScoreAdj")
    if isinstance(oom_score_adj, int) and oom_score_adj < 0 and not host.can_lower_oom_score:
        del process["oomScoreAdj"]
        changes.append(
            Adaptation(
                field="process.oomScoreAdj",
                message=f"host adaptation: leaving out oomScoreAdj {oom_score_adj} "
                "(lowering the OOM score needs CAP_SYS_RESOURCE, which this host lacks)",
            )
        )
    return adapted, changes
