"""Resolve: the table of all services, checked as a set.

The first of the two passes (``compiler.build`` is the second): names, IDs and dependencies of
every service are known before any spec is built, and the same table gives the
plan its start levels. Checks here need the whole set: duplicate names,
references to extension services, cycles.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from extsvc.compiler.format.diagnostics import Diagnostic, did_you_mean
from extsvc.compiler.format.serviceids import EXTENSION_ID_PREFIX, is_extension_id
from extsvc.compiler.model import Dependency, DependencyKind, Service


@dataclass(frozen=True)
class ServiceTable:
    # Sorted by ID, so everything built from the table is in a stable order.
    services: Mapping[str, Service]
    levels: tuple[tuple[str, ...], ...]

    def level_of(self, service_id: str) -> int:
        return self._level_index[service_id]

    @cached_property
    def _level_index(self) -> dict[str, int]:
        return {sid: index for index, level in enumerate(self.levels) for sid in level}


def service_dependencies(service: Service) -> Iterator[Dependency]:
    return (d for d in service.depends if d.kind is DependencyKind.SERVICE)


def extension_dependencies(service: Service) -> tuple[str, ...]:
    """IDs of the extension services this one waits for, in file order, once each."""
    seen = dict.fromkeys(
        str(d.value) for d in service_dependencies(service) if is_extension_id(str(d.value))
    )
    return tuple(seen)


def host_dependencies(service: Service) -> tuple[str, ...]:
    seen = dict.fromkeys(
        str(d.value) for d in service_dependencies(service) if not is_extension_id(str(d.value))
    )
    return tuple(seen)


def _unique_services(services: Sequence[Service]) -> tuple[dict[str, Service], list[Diagnostic]]:
    """First definition of each name wins; every later one is an error (Talos rejects them)."""
    by_id: dict[str, Service] = {}
    problems: list[Diagnostic] = []
    for service in sorted(services, key=lambda s: (s.file, s.name)):
        first = by_id.get(service.id)
        if first is None:
            by_id[service.id] = service
            continue
        where = first.source_map.value_position(("name",))
        problems.append(
            service.source_map.diagnostic(
                ("name",),
                f"duplicate service name '{service.name}' "
                f"(also defined at {first.file}:{where.line}:{where.col})",
            )
        )
    return by_id, problems


def _check_references(by_id: Mapping[str, Service]) -> Iterator[Diagnostic]:
    names = sorted(service.name for service in by_id.values())
    for service in by_id.values():
        # Never the service itself: waiting for itself is a cycle, not a fix.
        others = sorted(by_id.keys() - {service.id})
        for dependency in service_dependencies(service):
            target = str(dependency.value)
            if is_extension_id(target):
                if target not in by_id:
                    yield service.source_map.diagnostic(
                        dependency.field_path,
                        f"no extension service '{target.removeprefix(EXTENSION_ID_PREFIX)}' "
                        f"in this set (service '{target}' would never start)",
                        hint=did_you_mean(target, others),
                    )
            elif target in names:
                yield service.source_map.diagnostic(
                    dependency.field_path,
                    f"'{target}' is the name of an extension service, but services are "
                    "referred to by ID; this waits for a host service of that name",
                    hint=f"did you mean '{EXTENSION_ID_PREFIX}{target}'?"
                    if target != service.name
                    else None,
                )


def _dependency_graph(by_id: Mapping[str, Service]) -> dict[str, list[str]]:
    """ID -> the IDs of the set's services it waits for, in file order, once each."""
    return {sid: [d for d in extension_dependencies(s) if d in by_id] for sid, s in by_id.items()}


def _find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Cycles found by depth-first search (at least one per cyclic group of services),
    each once, rotated to start at its least ID.

    The search keeps its own stack of (node, next successor index) instead of recursing:
    a valid chain of thousands of services is ordinary input, and Python's call stack
    would end it with a RecursionError.
    """
    cycles: set[tuple[str, ...]] = set()
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path: list[str] = [root]  # the current path from root
        on_path: dict[str, int] = {root: 0}  # node -> its index in path
        todo: list[int] = [0]  # per node of path: the next successor to look at
        while path:
            node, index = path[-1], todo[-1]
            successors = graph[node]
            if index == len(successors):
                done.add(node)
                del on_path[node]
                path.pop()
                todo.pop()
                continue
            todo[-1] = index + 1
            successor = successors[index]
            if successor in on_path:
                cycle = path[on_path[successor] :]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif successor not in done:
                on_path[successor] = len(path)
                path.append(successor)
                todo.append(0)
    return [list(cycle) for cycle in sorted(cycles)]


def _cycle_diagnostic(cycle: list[str], by_id: Mapping[str, Service]) -> Diagnostic:
    first = by_id[cycle[0]]
    next_id = cycle[1] if len(cycle) > 1 else cycle[0]
    edge = next(d for d in service_dependencies(first) if d.value == next_id)
    return first.source_map.diagnostic(
        edge.field_path, "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
    )


def _levels(graph: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Topological layers: a level holds the services whose dependencies are all earlier,
    sorted by ID. Empty when the graph has a cycle (reported by ``_find_cycles``; a set
    with a cycle is never built)."""
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return ()
    levels: list[tuple[str, ...]] = []
    while sorter.is_active():
        ready = tuple(sorted(sorter.get_ready()))
        levels.append(ready)
        sorter.done(*ready)
    return tuple(levels)


def resolve(services: Sequence[Service]) -> tuple[ServiceTable, list[Diagnostic]]:
    by_id, problems = _unique_services(services)
    problems.extend(_check_references(by_id))
    graph = _dependency_graph(by_id)
    problems.extend(_cycle_diagnostic(cycle, by_id) for cycle in _find_cycles(graph))
    ordered = {sid: by_id[sid] for sid in sorted(by_id)}
    return ServiceTable(services=ordered, levels=_levels(graph)), problems
