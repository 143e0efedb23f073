"""Runnable proof: a compiled bundle starts under the real runc.

The compiled config.json stays faithful to Talos (39 capabilities,
oomScoreAdj -600). A host that cannot grant those (this sandbox lacks
CAP_SYS_RESOURCE) runs it through the executor's host adaptation, the same
code ``extsvc run`` uses.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.defaults import GRANTED_CAPABILITIES
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from tests.support.rootfs import make_busybox_rootfs

SERVICE = """\
name: proof
container:
  entrypoint: /bin/sh
  args:
    - -c
    - |
      echo "hello from $GREETING"
      touch /probe 2>/dev/null && echo rootfs-writable || echo rootfs-readonly
  environment:
    - GREETING=extsvc
  mounts:
    - source: {shared}
      destination: /shared
      type: bind
      options: [rbind, ro]
  security:
    rootfsPropagation: rshared
restart: never
"""


@pytest.mark.runc
def test_compiled_bundle_runs_under_runc(tmp_path: Path) -> None:
    rootfs_base = tmp_path / "containers"
    make_busybox_rootfs(rootfs_base / "proof")
    (rootfs_base / "proof" / "shared").mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    source = tmp_path / "src" / "proof.yaml"
    source.parent.mkdir()
    source.write_text(SERVICE.format(shared=shared))

    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["compile", str(source.parent), "-o", str(out), "--rootfs-base", str(rootfs_base)]
    )
    assert result.exit_code == 0, result.output
    compiled = json.loads((out / "bundles" / "proof" / "config.json").read_text())
    # The bundle keeps what Talos asks for, whatever the host.
    assert compiled["process"]["oomScoreAdj"] == -600
    assert compiled["process"]["capabilities"]["bounding"] == list(GRANTED_CAPABILITIES)

    runtime_spec, _ = adapt_spec(compiled, HostFacts.probe())
    runtime_bundle = tmp_path / "runtime"
    runtime_bundle.mkdir()
    (runtime_bundle / "config.json").write_text(json.dumps(runtime_spec))
    container_id = f"extsvc-proof-{uuid.uuid4().hex[:8]}"
    state_root = tmp_path / "runc-state"
    try:
        run = subprocess.run(
            [
                "runc",
                "--root",
                str(state_root),
                "run",
                "--bundle",
                str(runtime_bundle),
                container_id,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run(
            ["runc", "--root", str(state_root), "delete", "--force", container_id],
            capture_output=True,
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["hello from extsvc", "rootfs-readonly"]


def test_adaptation_is_reported_and_leaves_the_compiled_spec_alone() -> None:
    spec = {
        "process": {
            "oomScoreAdj": -600,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE"]},
        }
    }
    restricted = HostFacts(
        bounding_capabilities=frozenset({"CAP_CHOWN"}), can_lower_oom_score=False
    )
    adapted, changes = adapt_spec(spec, restricted)
    assert adapted["process"] == {"capabilities": {"bounding": ["CAP_CHOWN"]}}
    assert [change.field for change in changes] == ["process.capabilities", "process.oomScoreAdj"]
    assert spec["process"]["oomScoreAdj"] == -600  # input untouched


def test_a_full_host_needs_no_adaptation() -> None:
    spec = {
        "process": {"oomScoreAdj": -600, "capabilities": {"bounding": list(GRANTED_CAPABILITIES)}}
    }
    full = HostFacts(
        bounding_capabilities=frozenset(GRANTED_CAPABILITIES), can_lower_oom_score=True
    )
    adapted, changes = adapt_spec(spec, full)
    assert adapted == spec
    assert changes == []
