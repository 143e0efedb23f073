"""The x-extsvc block: honoured by extsvc, invisible when absent, and explained field by field."""

from __future__ import annotations

from pathlib import Path

from extsvc.compiler.format.plan import load_plan
from extsvc.compiler.format.servicepolicy import (
    HealthCheck,
    OnUnhealthy,
    RestartLimit,
    ServicePolicy,
)
from extsvc.compiler.pipeline import CompileOptions, CompileResult, compile
from extsvc.compiler.review.diff import CompiledOutput, diff_outputs
from extsvc.compiler.review.outputs import output_from_files
from extsvc.compiler.sources import SourceFile
from extsvc.compiler.write import write_tree
from tests.golden import GOLDEN_ROOT, compile_case

OPTIONS = CompileOptions(rootfs_base="/usr/local/lib/containers", arch="amd64")
HELLO = (GOLDEN_ROOT / "hello-world" / "input" / "hello-world.yaml").read_bytes()


def compile_one(data: bytes) -> CompileResult:
    result = compile([SourceFile("hello-world.yaml", data)], OPTIONS)
    assert result.ok, [d.render() for d in result.diagnostics]
    return result


def test_an_empty_block_changes_no_output_byte() -> None:
    without = compile_one(HELLO)
    with_empty_block = compile_one(HELLO + b"x-extsvc: {}\n")
    assert with_empty_block.files == without.files


def test_resources_and_capabilities_are_explained_by_the_block_lines() -> None:
    block = (
        b"x-extsvc:\n"
        b"  resources:\n"
        b"    memory: 1Gi\n"
        b"    cpus: 0.5\n"
        b"    pids: 64\n"
        b"  capabilities: [CAP_NET_ADMIN]\n"
    )
    lines = len(HELLO.decode().splitlines())
    origins = compile_one(HELLO + block).built["hello-world"].origins
    assert str(origins["linux.resources.memory"]).endswith(f"hello-world.yaml:{lines + 3}:13)")
    assert str(origins["linux.resources.cpu"]).endswith(f"hello-world.yaml:{lines + 4}:11)")
    assert str(origins["linux.resources.pids"]).endswith(f"hello-world.yaml:{lines + 5}:11)")
    assert str(origins["process.capabilities"]).startswith("x-extsvc capabilities")
    assert str(origins["linux.resources.devices"]).startswith("Talos")


def test_without_a_block_capabilities_are_explained_as_talos_defaults() -> None:
    origins = compile_one(HELLO).built["hello-world"].origins
    assert "all grantable capabilities" in str(origins["process.capabilities"])
    assert "linux.resources.memory" not in origins


def test_the_executor_reads_the_policy_as_typed_fields(tmp_path: Path) -> None:
    result = compile_case(GOLDEN_ROOT / "x-extsvc")
    write_tree(result.files, tmp_path / "out")
    plan = load_plan(tmp_path / "out", machine="x86_64")
    assert plan.services["ext-bgp"].policy == ServicePolicy(
        health=HealthCheck(
            exec=("/bin/check", "--quick"),
            interval=10.0,
            timeout=3.0,
            retries=3,
            start_period=30.0,
            on_unhealthy=OnUnhealthy.RESTART,
        ),
        start_timeout=120.0,
        optional=True,
        stop_timeout=60.0,
        restart_limit=RestartLimit(count=5, window=60.0),
    )
    exporter = plan.services["ext-exporter"].policy
    assert exporter.health is not None
    assert exporter.health.on_unhealthy is OnUnhealthy.NONE
    assert (exporter.health.interval, exporter.health.timeout, exporter.health.retries) == (
        30.0,
        30.0,
        3,
    )
    assert plan.services["ext-plain"].policy == ServicePolicy()


def test_diff_calls_less_privilege_what_the_block_takes_away_and_more_what_it_gives() -> None:
    def output(block: bytes, label: str) -> CompiledOutput:
        return output_from_files(compile_one(HELLO + block).files, label)

    talos = output(b"", "talos")
    narrow = output(
        b"x-extsvc:\n  resources: {memory: 1Gi}\n  capabilities: [CAP_NET_ADMIN]\n", "narrow"
    )
    wider = output(
        b"x-extsvc:\n  resources: {memory: 2Gi}\n  capabilities: [CAP_NET_ADMIN, CAP_SYS_ADMIN]\n",
        "wider",
    )

    def classified(old: CompiledOutput, new: CompiledOutput) -> dict[str, str]:
        return {c.field: c.privilege.value for c in diff_outputs(old, new)}

    assert classified(talos, narrow) == {
        "process.capabilities": "privilege-",
        "linux.resources.memory.limit": "privilege-",
    }
    assert classified(narrow, wider) == {
        "process.capabilities": "privilege+",
        "linux.resources.memory.limit": "privilege+",
    }
    assert classified(narrow, talos) == {
        "process.capabilities": "privilege+",
        "linux.resources.memory.limit": "privilege+",
    }
