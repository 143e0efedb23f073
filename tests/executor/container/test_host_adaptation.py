"""The spec is adapted to the host only by narrowing: capabilities the host lacks are removed,
nothing is added (fake runtime)."""

from __future__ import annotations

from extsvc.compiler.format.capabilities import LINUX_CAPABILITIES
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec


def test_host_adaptation_only_removes_from_a_narrowed_capability_list() -> None:
    spec = {"process": {"capabilities": {s: ["CAP_NET_ADMIN", "CAP_SYS_RESOURCE"] for s in
                                         ("bounding", "effective", "permitted")}}}  # fmt: skip
    host = HostFacts(
        bounding_capabilities=frozenset(LINUX_CAPABILITIES) - {"CAP_SYS_RESOURCE"},
        can_lower_oom_score=False,
    )
    adapted, changes = adapt_spec(spec, host)
    assert adapted["process"]["capabilities"]["effective"] == ["CAP_NET_ADMIN"]
    assert [c.message for c in changes] == [
        "host adaptation: not granting CAP_SYS_RESOURCE (not in the executor's bounding set)"
    ]
    # What the block left out is not given back, even though the host could grant it.
    assert "CAP_SYS_ADMIN" not in adapted["process"]["capabilities"]["bounding"]
    # The compiled spec is left as Talos asks for it.
    assert spec["process"]["capabilities"]["effective"] == ["CAP_NET_ADMIN", "CAP_SYS_RESOURCE"]
