"""Where containers' cgroups go (executor.runtime.placement): the policy, without systemd.

What it does on a real host is tested with real runc in test_placement_runc.py and
under a real systemd in the systemd rig.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from extsvc.executor.runtime import placement
from extsvc.executor.runtime.adapt import HostFacts, adapt_spec
from extsvc.executor.runtime.placement import CgroupPlacement, decide
from extsvc.executor.runtime.recovery import own_cgroup_paths
from extsvc.executor.runtime.workspace import Workspace
from tests.executor.fakes import make_plan, make_service

# /proc/self/cgroup of a unit's process on a cgroup v1 / hybrid host (systemd 252).
HYBRID = """\
12:memory:/system.slice/extsvc.service
11:cpuset:/
1:name=systemd:/system.slice/extsvc.service
0::/system.slice/extsvc.service
"""
UNIFIED = "0::/system.slice/extsvc.service\n"
UNIT_ENV = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"}


def test_auto_places_containers_inside_the_systemd_unit() -> None:
    for text in (HYBRID, UNIFIED):
        placed = decide("auto", UNIT_ENV, text, is_delegated=True)
        assert placed.parent == "/system.slice/extsvc.service"
        assert placed.place("/system/extensions/web") == (
            "/system.slice/extsvc.service/system/extensions/web"
        )
        assert "extsvc.service" in placed.describe("/system/extensions/web")
        assert placed.warning == ""


def test_auto_keeps_talos_paths_without_systemd() -> None:
    # No $INVOCATION_ID: a terminal, a Talos-like init, OpenRC, a container's PID 1.
    assert decide("auto", {}, HYBRID).parent is None
    # Run by systemd, but in the root cgroup (nothing to be inside of).
    assert decide("auto", UNIT_ENV, "1:name=systemd:/\n0::/\n").parent is None
    assert decide("none", UNIT_ENV, HYBRID).parent is None
    assert CgroupPlacement().place("/system/extensions/web") == "/system/extensions/web"
    assert CgroupPlacement().describe("/system/extensions/web") == ""


def test_a_unit_without_delegate_is_placed_with_a_warning() -> None:
    placed = decide("auto", UNIT_ENV, HYBRID, is_delegated=False)
    assert placed.parent == "/system.slice/extsvc.service"
    assert "Delegate=yes" in placed.describe("/system/extensions/web")


def test_after_moving_into_its_leaf_the_parent_is_still_the_unit() -> None:
    leaf = "0::/system.slice/extsvc.service/executor\n"
    assert decide("auto", UNIT_ENV, leaf).parent == "/system.slice/extsvc.service"


def test_an_explicit_parent_and_bad_settings() -> None:
    placed = decide("/machine.slice/extsvc/", {}, "")
    assert placed.place("/system/extensions/web") == "/machine.slice/extsvc/system/extensions/web"
    assert decide("/", {}, "").parent is None
    for bad in ("relative/path", "/a/../b", "/a/./b", "", "Auto"):
        with pytest.raises(ValueError, match="expected auto, none or an absolute cgroup path"):
            decide(bad, {}, "")


def test_the_run_option_refuses_a_bad_parent_with_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from extsvc.executor.cli.run import main

    assert main(["/nonexistent", "--cgroup-parent", "../x"]) == 2
    assert "expected auto, none or an absolute cgroup path" in capsys.readouterr().err


def test_the_spec_is_adapted_and_the_compiled_one_kept() -> None:
    spec = {"linux": {"cgroupsPath": "/system/extensions/web", "namespaces": []}}
    host = HostFacts(frozenset(), True, decide("auto", UNIT_ENV, HYBRID, is_delegated=True))
    adapted, changes = adapt_spec(spec, host)
    assert adapted["linux"]["cgroupsPath"] == "/system.slice/extsvc.service/system/extensions/web"
    assert adapted["linux"]["namespaces"] is spec["linux"]["namespaces"]
    assert spec["linux"]["cgroupsPath"] == "/system/extensions/web"
    assert [c.field for c in changes] == ["linux.cgroupsPath"]
    assert changes[0].message.startswith(
        "host adaptation: cgroup /system.slice/extsvc.service/system/extensions/web "
        "instead of /system/extensions/web"
    )
    unchanged, none = adapt_spec(spec, HostFacts(frozenset(), True))
    assert unchanged["linux"]["cgroupsPath"] == "/system/extensions/web" and none == []


def test_own_cgroup_reads_the_tracking_hierarchy() -> None:
    assert placement.own_cgroup(HYBRID) == "/system.slice/extsvc.service"
    assert placement.own_cgroup(UNIFIED) == "/system.slice/extsvc.service"
    assert placement.own_cgroup("") is None


def test_recovery_looks_where_the_host_puts_cgroups_and_where_a_bundle_says(
    tmp_path: Path,
) -> None:
    web = make_service("web", spec={"linux": {"cgroupsPath": "/system/extensions/web"}})
    plan = make_plan(web)
    workspace = Workspace(tmp_path / "state")
    workspace.create()
    unit = CgroupPlacement("/system.slice/extsvc.service", "test")
    # An earlier executor ran with another parent; its runtime bundle says where.
    bundle = workspace.bundle_dir("web")
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(
        json.dumps({"linux": {"cgroupsPath": "/elsewhere/system/extensions/web"}})
    )
    found = own_cgroup_paths(plan, {"web", "gone"}, unit, workspace)
    assert found == {
        "/system.slice/extsvc.service/system/extensions/web",
        "/system.slice/extsvc.service/system/extensions/gone",
        "/elsewhere/system/extensions/web",
    }


def test_enter_leaf_moves_the_executor_on_cgroup_v2_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = CgroupPlacement("/system.slice/extsvc.service", "test")
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    assert placement.enter_leaf(unit, v1) is None
    v2 = tmp_path / "v2"
    (v2 / "system.slice/extsvc.service").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    proc = tmp_path / "self-cgroup"
    proc.write_text(UNIFIED)
    assert placement.enter_leaf(unit, v2, proc) == "/system.slice/extsvc.service/executor"
    procs = v2 / "system.slice/extsvc.service/executor/cgroup.procs"
    assert procs.read_text().strip() == str(os.getpid())
    # An explicit parent elsewhere: the executor's own cgroup is not in the way.
    other = CgroupPlacement("/machine.slice/extsvc", "test")
    assert placement.enter_leaf(other, v2, proc) is None
