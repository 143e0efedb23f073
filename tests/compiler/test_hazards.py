"""Boot hazards (`extsvc validate`): what could keep a service waiting forever, as warnings."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.compiler.check import check_sources
from extsvc.compiler.format.diagnostics import Severity
from extsvc.compiler.review.hazards import HazardContext, check_with_hazards, host_service_ids
from tests.compiler.helpers import sources

ONE_SHOT = """\
name: setup
container:
  entrypoint: /setup
  mounts:
    - source: /run/setup
      destination: /run/setup
      type: bind
      options: [rbind, rw]
restart: never
"""


def waiter(*depends: str) -> str:
    lines = "".join(f"  - {d}\n" for d in depends)
    return f"name: waiter\ncontainer:\n  entrypoint: /w\ndepends:\n{lines}restart: always\n"


def hazards(*depends: str, context: HazardContext | None = None, **more: str) -> list[str]:
    checked = sources(waiter=waiter(*depends), **more)
    result = check_with_hazards(checked, context or HazardContext())
    assert all(d.severity is Severity.WARNING for d in result.diagnostics)
    return [f"{d.position.line}: {d.message}" for d in result.diagnostics]


def test_a_path_nothing_provides_is_a_hazard() -> None:
    assert hazards("path: /dev/zfs") == [
        "5: no service of this set provides /dev/zfs and it is not a usual host path: "
        "unless something else creates it, ext-waiter waits forever"
    ]


def test_usual_host_paths_and_paths_a_service_provides_are_not() -> None:
    assert hazards("path: /dev/null", "path: /etc/resolv.conf/") == []
    assert hazards("path: /run/setup/ready", "service: ext-setup", setup=ONE_SHOT) == [
        "6: ext-setup runs once (restart: never): if that run fails, ext-waiter waits forever"
    ]


def test_a_read_only_mount_provides_nothing() -> None:
    read_only = ONE_SHOT.replace("[rbind, rw]", "[rbind, ro]").replace("never", "always")
    assert len(hazards("path: /run/setup/ready", setup=read_only)) == 1


def test_configuration_without_a_document() -> None:
    assert hazards("configuration: true") == [
        "5: no ExtensionServiceConfig named 'waiter' was supplied: "
        "ext-waiter waits until one appears in the executor's config directory"
    ]
    supplied = HazardContext(configurations=frozenset({"waiter"}))
    assert hazards("configuration: true", context=supplied) == []


def test_host_services_need_a_readiness_rule() -> None:
    (without_file,) = hazards("service: cri")
    assert "needs a readiness rule for it (--host-services)" in without_file
    rules = HazardContext(host_services=frozenset({"udevd"}), host_services_file="hs.yaml")
    (missing,) = hazards("service: cri", context=rules)
    assert "no readiness rule for host service 'cri' in hs.yaml" in missing
    covered = HazardContext(host_services=frozenset({"cri"}), host_services_file="hs.yaml")
    assert hazards("service: cri", context=covered) == []


def test_an_until_success_dependency_is_not_a_hazard() -> None:
    retried = ONE_SHOT.replace("restart: never", "restart: untilSuccess")
    assert hazards("service: ext-setup", setup=retried) == []


def test_compile_does_not_look_for_hazards() -> None:
    assert check_sources(sources(waiter=waiter("path: /dev/zfs"))).diagnostics == ()


def test_host_service_ids_reads_the_keys() -> None:
    assert host_service_ids("hs.yaml", b"cri:\n  ready: true\nudevd: {systemd: x}\n") == (
        frozenset({"cri", "udevd"}),
        [],
    )
    ids, problems = host_service_ids("hs.yaml", b"- cri\n")
    assert ids is None and "hs.yaml:1:1" in problems[0].render()


def test_validate_warns_and_strict_fails(tmp_path: Path) -> None:
    (tmp_path / "waiter.yaml").write_text(waiter("service: cri", "path: /dev/zfs"))
    rules = tmp_path / "hs.yaml"
    rules.write_text("cri:\n  path: /run/containerd/containerd.sock\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(tmp_path / "waiter.yaml")])
    assert result.exit_code == 0
    assert result.stderr.count("warning:") == 2
    result = runner.invoke(
        cli, ["validate", str(tmp_path / "waiter.yaml"), "--host-services", str(rules)]
    )
    assert result.stderr.count("warning:") == 1
    strict = runner.invoke(cli, ["validate", str(tmp_path / "waiter.yaml"), "--strict"])
    assert strict.exit_code == 1
