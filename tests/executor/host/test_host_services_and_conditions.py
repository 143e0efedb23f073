"""Host services and conditions: the host services file and its errors, the rules and how they are
checked, network conditions, environment checks that say the fix."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from extsvc.executor.daemon.startup import check_environment
from extsvc.executor.errors import EnvironmentMissingError, InvalidInputError
from extsvc.executor.host.readiness import ReadinessRule, load_host_services
from extsvc.executor.options import DaemonOptions
from extsvc.executor.process import spawn
from extsvc.executor.runtime import mounts
from extsvc.executor.service.conditions import HostServiceUp, NetworkReady


def test_host_services_file(tmp_path: Path) -> None:
    path = tmp_path / "host-services.yaml"
    path.write_text(
        "cri:\n  path: /run/containerd/containerd.sock\n"
        "udevd:\n  systemd: systemd-udevd.service\n"
        "dns:\n  command: [getent, hosts, example.com]\n"
        "sh:\n  command: 'test -e /x'\n"
        "containerd:\n  ready: true\n"
    )
    rules = load_host_services(path)
    assert rules["cri"] == ReadinessRule(path="/run/containerd/containerd.sock")
    assert rules["udevd"].systemd_unit == "systemd-udevd.service"
    assert rules["dns"].command == ("getent", "hosts", "example.com")
    assert rules["sh"].command == ("/bin/sh", "-c", "test -e /x")
    assert rules["containerd"].always


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cri: {path: relative}",
            "hs.yaml:1:13: error: cri.path: must be an absolute path, got 'relative'",
        ),
        (
            "cri: {path: /x, ready: true}",
            "hs.yaml:1:6: error: cri: a readiness rule names exactly one of "
            "path, systemd, command, ready; this one names path and ready",
        ),
        (
            "cri: [1]",
            "hs.yaml:1:6: error: cri: expected a readiness rule "
            "(one of path, systemd, command, ready), got a list",
        ),
        (
            "- a",
            "hs.yaml:1:1: error: expected a mapping of service id to readiness rule "
            "at the top level, got a list",
        ),
        ("cri: {path: [", "hs.yaml:2:1: error: invalid YAML"),
        ("cri:\n  pth: /run/x\n", "hs.yaml:2:3: error: cri.pth: unknown field 'pth'\n"),
        ("dns: {command: ''}", "hs.yaml:1:16: error: dns.command: expected a command"),
    ],
)
def test_host_services_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hs.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as raised:
        load_host_services(path)
    assert message in str(raised.value).replace(f"{tmp_path}/", "")


def test_host_services_file_reports_every_problem_with_caret_and_hint(tmp_path: Path) -> None:
    """Refused at start with all its problems at once, as `extsvc validate` shows them."""
    path = tmp_path / "hs.yaml"
    path.write_text("cri:\n  pth: /run/x\nudevd: {systemd: ''}\nok: {ready: true}\n")
    with pytest.raises(InvalidInputError) as raised:
        load_host_services(path)
    assert str(raised.value).replace(f"{tmp_path}/", "") == (
        "the host-services file hs.yaml is invalid (2 errors):\n"
        "hs.yaml:2:3: error: cri.pth: unknown field 'pth'\n"
        "      pth: /run/x\n"
        "      ^\n"
        "  hint: did you mean 'path'?\n"
        "hs.yaml:3:18: error: udevd.systemd: must not be empty\n"
        "    udevd: {systemd: ''}\n"
        "                     ^"
    )


def test_host_service_rules_are_checked(tmp_path: Path) -> None:
    async def check(rule: ReadinessRule | None) -> bool:
        return await HostServiceUp("x", rule).satisfied()

    assert asyncio.run(check(ReadinessRule(always=True)))
    assert not asyncio.run(check(None))
    assert not asyncio.run(check(ReadinessRule(path=str(tmp_path / "sock"))))
    (tmp_path / "sock").touch()
    assert asyncio.run(check(ReadinessRule(path=str(tmp_path / "sock"))))
    assert asyncio.run(check(ReadinessRule(command=("true",))))
    assert not asyncio.run(check(ReadinessRule(command=("false",))))
    assert not asyncio.run(check(ReadinessRule(command=("/nonexistent/binary",))))


def test_systemd_rule_asks_systemctl_is_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A systemd rule is met when `systemctl is-active --quiet UNIT` exits 0 (a stand-in
    systemctl first in the children's PATH records the call: this machine has no systemd)."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ "$3" = up.service ]\n')
    fake.chmod(0o755)
    monkeypatch.setattr(spawn, "CHILD_PATH", f"{fake.parent}:{spawn.CHILD_PATH}")

    async def check(unit: str) -> bool:
        return await HostServiceUp("x", ReadinessRule(systemd_unit=unit)).satisfied()

    assert asyncio.run(check("up.service"))
    assert not asyncio.run(check("down.service"))
    assert calls.read_text().splitlines() == [
        "is-active --quiet up.service",
        "is-active --quiet down.service",
    ]


def test_network_condition_names_the_failing_checks() -> None:
    state = {"addresses": False, "hostname": True}
    condition = NetworkReady(
        ("addresses", "hostname"), {name: (lambda n=name: state[n]) for name in state}
    )
    assert not asyncio.run(condition.satisfied())
    assert condition.describe() == "network (addresses)"
    state["addresses"] = True
    assert asyncio.run(condition.satisfied())


def test_environment_checks_say_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    options = DaemonOptions(plan=tmp_path, runtime="no-such-runc")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentMissingError, match="must run as root"):
        check_environment(options)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(EnvironmentMissingError, match=r"apt-get install runc\) or pass --runtime"):
        check_environment(options)
    monkeypatch.setattr(mounts, "overlay_supported", lambda: False)
    with pytest.raises(EnvironmentMissingError, match="modprobe overlay"):
        check_environment(DaemonOptions(plan=tmp_path, runtime="true"))
    assert check_environment(DaemonOptions(plan=tmp_path, runtime="true", overlay=False)).endswith(
        "/true"
    )
