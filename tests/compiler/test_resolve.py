"""The set of services: levels, references, cycles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.check import check_sources
from extsvc.compiler.sources import collect_sources
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


# --- Large sets: levels and cycles need no recursion ------------------------------------

LARGE = 5_000


def write_services(folder: Path, depends_on: Callable[[int], int | None]) -> Path:
    """``LARGE`` service files s0000..s4999 in ``folder``; service i waits for
    ``depends_on(i)`` (an index, or None for no dependency)."""
    folder.mkdir()
    for i in range(LARGE):
        target = depends_on(i)
        (folder / f"s{i:04}.yaml").write_text(
            svc(f"s{i:04}", *([] if target is None else [f"ext-s{target:04}"]))
        )
    return folder


def validate(folder: Path) -> tuple[int, str]:
    # catch_exceptions=False: a RecursionError fails the test with its own traceback.
    result = CliRunner().invoke(cli, ["validate", str(folder)], catch_exceptions=False)
    return result.exit_code, result.output


def test_a_chain_of_5000_services_is_valid_in_5000_levels(tmp_path: Path) -> None:
    folder = write_services(tmp_path / "chain", lambda i: i - 1 if i else None)

    code, output = validate(folder)

    assert (code, output) == (0, f"{LARGE} files ok: 0 errors, 0 warnings\n")
    result = check_sources(collect_sources([str(folder)])[0])
    assert result.table is not None
    assert result.table.levels == tuple((f"ext-s{i:04}",) for i in range(LARGE))


def test_a_cycle_through_5000_services_is_one_error_naming_each_once(tmp_path: Path) -> None:
    folder = write_services(tmp_path / "ring", lambda i: (i + 1) % LARGE)

    code, output = validate(folder)

    ring = " -> ".join(f"ext-s{i:04}" for i in [*range(LARGE), 0])
    assert code == 1
    assert output.splitlines()[0] == (
        f"{folder}/s0000.yaml:5:14: error: depends[0].service: dependency cycle: {ring}"
    )
    # The cycle is one error, reported in the file of its least id.
    assert output.splitlines()[-1] == f"1 of {LARGE} files invalid: 1 error, 0 warnings"


def test_a_missing_dependency_never_suggests_the_service_itself(tmp_path: Path) -> None:
    """'did you mean ext-nwc-web?' in nwc-web.yaml would be a cycle, not a fix."""
    web = tmp_path / "nwc-web.yaml"
    web.write_text(
        "name: nwc-web\ncontainer:\n  entrypoint: /web\n"
        "depends:\n  - service: ext-nwc-wbe\n  - service: nwc-web\nrestart: always\n"
    )

    alone = CliRunner().invoke(cli, ["validate", str(web)])

    assert alone.exit_code == 1
    assert f"{web}:5:14: error: depends[0].service: no extension service 'nwc-wbe'" in (
        alone.stderr
    )
    assert "'nwc-web' is the name of an extension service" in alone.stderr
    assert "hint" not in alone.stderr

    (tmp_path / "nwc-db.yaml").write_text(
        "name: nwc-db\ncontainer:\n  entrypoint: /db\n"
        "depends:\n  - service: ext-nwc-dbb\nrestart: always\n"
    )
    both = CliRunner().invoke(cli, ["validate", str(tmp_path)])

    # Each file's hints name the other service, never its own.
    hints = {}
    for line in both.stderr.splitlines():
        if ": error: " in line:
            file = line.split(":")[0]
        elif "hint:" in line:
            hints.setdefault(Path(file).stem, []).append(line.strip())
    assert hints == {
        "nwc-web": ["hint: did you mean 'ext-nwc-db'?"],
        "nwc-db": ["hint: did you mean 'ext-nwc-web'?"],
    }
