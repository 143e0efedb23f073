"""The set of services: levels, references, cycles."""

from __future__ import annotations

from extsvc.compiler.check import check_sources
from tests.compiler.helpers import sources


def svc(name: str, *deps: str) -> str:
    depends = "".join(f"  - service: {dep}\n" for dep in deps)
    return (
        f"name: {name}\ncontainer:\n  entrypoint: /x\n"
        + (f"depends:\n{depends}" if deps else "")
        + "restart: always\n"
    )


def test_levels_are_topological_layers_sorted_within() -> None:
    result = check_sources(
        sources(
            a=svc("a"),
            b=svc("b", "ext-a"),
            c=svc("c", "ext-a", "cri"),
            d=svc("d", "ext-b", "ext-c"),
        )
    )
    assert result.table is not None
    assert result.table.levels == (("ext-a",), ("ext-b", "ext-c"), ("ext-d",))


def test_host_services_do_not_affect_levels() -> None:
    result = check_sources(sources(a=svc("a", "cri", "containerd")))
    assert result.table is not None and result.table.levels == (("ext-a",),)


def test_a_three_service_cycle_is_printed_from_its_least_id() -> None:
    result = check_sources(sources(a=svc("a", "ext-c"), b=svc("b", "ext-a"), c=svc("c", "ext-b")))
    messages = [d.message for d in result.diagnostics]
    assert messages == ["dependency cycle: ext-a -> ext-c -> ext-b -> ext-a"]


def test_results_do_not_depend_on_file_order() -> None:
    forward = check_sources(sources(a=svc("a"), b=svc("b", "ext-a")))
    backward = check_sources(list(reversed(sources(a=svc("a"), b=svc("b", "ext-a")))))
    assert forward.table is not None and backward.table is not None
    assert list(forward.table.services) == list(backward.table.services)
    assert forward.table.levels == backward.table.levels
