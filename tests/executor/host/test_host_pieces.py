"""Small host-facing pieces: durations, host services, conditions, environment checks, rendering."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from extsvc.executor.cli.servicetext import service_detail, services_table
from extsvc.executor.daemon.startup import check_environment
from extsvc.executor.durations import format_duration
from extsvc.executor.errors import EnvironmentMissingError, InvalidInputError
from extsvc.executor.host.inotify import DirectoryWatch
from extsvc.executor.host.readiness import ReadinessRule, load_host_services
from extsvc.executor.options import DaemonOptions
from extsvc.executor.process import spawn
from extsvc.executor.runtime import cgroups, mounts
from extsvc.executor.service.clock import Moment
from extsvc.executor.service.conditions import HostServiceUp, NetworkReady
from extsvc.executor.service.restart import short_duration
from extsvc.executor.service.states import Event, ServiceState, folded
from extsvc.executor.supervise.configwatch import ConfigDirectory, source_name
from tests.executor.fakes import make_service


def test_format_duration_like_talos_ages() -> None:
    assert [format_duration(s) for s in (0.2, 12.4, 167, 3725)] == [
        "200ms",
        "12s",
        "2m47s",
        "1h2m5s",
    ]


def test_a_restart_limit_window_reads_as_written() -> None:
    assert [short_duration(s) for s in (3600, 60, 7210, 4200, 600, 0.5)] == [
        "1h", "1m", "2h10s", "1h10m", "10m", "500ms",
    ]  # fmt: skip


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


def test_tables_look_like_talosctl() -> None:
    now = time.time()
    table = services_table(
        [
            {
                "id": "ext-a",
                "state": "Running",
                "health": "?",
                "lastChange": now - 167,
                "lastEvent": "x",
            }
        ],
        now,
    )
    assert table.splitlines() == [
        "SERVICE   STATE     HEALTH   LAST-CHANGE   LAST-EVENT",
        "ext-a     Running   ?        2m47s ago     x",
    ]
    detail = service_detail(
        {
            "id": "ext-a", "state": "Running", "health": "?", "pid": 42, "restarts": 1,
            "restartPolicy": "always", "cpuSeconds": 0.5, "memoryBytes": 3 * 1024 * 1024,
            "processes": [{}, {}],
            "events": [
                {"state": "Running", "message": "Started task", "time": now - 2},
                {"state": "Preparing", "message": "Running pre state", "time": now - 3},
            ],
        },
        now,
    )  # fmt: skip
    assert "MEMORY   3.0 MiB (2 processes)" in detail
    assert "EVENTS   [Running]: Started task (2s ago)" in detail
    assert "         [Preparing]: Running pre state (3s ago)" in detail


def test_a_folded_failure_reads_the_same_in_the_event_and_in_the_detail_view() -> None:
    assert folded("task failed", 1) == "task failed"
    assert folded("task failed", 12) == "task failed (\u00d712)"
    now = time.time()
    events = [
        Event(
            ServiceState.WAITING, "task failed; restarting in 5s", Moment(now - 1, 0, 0), True, 3
        ),
        Event(ServiceState.PREPARING, "Running pre state", Moment(now - 9, 0, 0)),
    ]
    detail = service_detail(
        {
            "id": "ext-a", "state": "Waiting", "health": "?", "pid": None, "restarts": 3,
            "restartPolicy": "always", "events": [event.to_json() for event in events],
        },
        now,
    )  # fmt: skip
    assert events[0].text == "task failed; restarting in 5s (\u00d73)"
    assert f"EVENTS   [Waiting]: {events[0].text} (1s ago)" in detail.splitlines()
    assert "         [Preparing]: Running pre state (9s ago)" in detail.splitlines()


def test_extension_service_config_is_applied_at_start(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    configs = ConfigDirectory(config_dir, tmp_path / "files")
    service = make_service("hello", spec={"process": {"args": ["./hello"], "env": ["A=1"]}})
    assert not configs.has("hello")
    assert configs.apply(service) is service.spec
    (config_dir / "hello.yaml").write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\n"
        "configFiles:\n  - content: 'key = value'\n    mountPath: /etc/hello/config.ini\n"
        "environment: [GREETING=hi]\n"
    )
    assert configs.has("hello")
    spec = configs.apply(service)
    assert spec["process"]["env"] == ["A=1", "GREETING=hi"]
    assert spec["mounts"] == [
        {
            "destination": "/etc/hello/config.ini",
            "options": ["ro", "bind"],
            "source": str(tmp_path / "files" / "hello" / "etc-hello-config.ini"),
            "type": "bind",
        }
    ]
    assert (tmp_path / "files" / "hello" / "etc-hello-config.ini").read_text() == "key = value"
    assert service.spec["process"]["env"] == ["A=1"]
    assert configs.changed_services() == []
    (config_dir / "hello.yaml").write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\n"
        "environment: [GREETING=bye]\n"
    )
    assert configs.changed_services() == ["hello"]
    assert source_name("/etc/a/b.conf") == "etc-a-b.conf"


def test_invalid_configuration_documents_are_reported_once_with_a_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken document is not configuration, and the operator is told where it is broken
    (once, not at every check; every problem of it, as `extsvc validate` words them); the
    service waiting for it says why; unchanged files are not read again."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    problems: list[str] = []
    configs = ConfigDirectory(config_dir, tmp_path / "files", on_problem=problems.append)
    broken = config_dir / "hello.yaml"
    broken.write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\n"
        "configFiles:\n  - content: x\n    mountPath: etc/relative\n    mode: 0644\n"
    )
    (config_dir / "bad.yaml").write_text("name: [\n")
    assert not configs.has("hello")
    assert not configs.has("hello")
    assert problems == [
        f"ExtensionServiceConfig ignored: {config_dir / 'bad.yaml'}:2:1: error: invalid YAML: "
        "did not find expected node content (while parsing a flow node)",
        f"ExtensionServiceConfig ignored: {broken}:6:16: error: configFiles[0].mountPath: "
        "must be an absolute file path (not '/', no '..' component, no control character), "
        "got 'etc/relative'",
        f"ExtensionServiceConfig ignored: {broken}:7:5: error: configFiles[0].mode: "
        "unknown field 'mode'",
    ]
    assert configs.problem("hello") == problems[1].removeprefix("ExtensionServiceConfig ignored: ")
    reads: list[Path] = []
    real_read = Path.read_bytes

    def counting_read(self: Path) -> bytes:
        reads.append(self)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    configs.has("hello")
    assert reads == []
    broken.write_text(
        broken.read_text().replace("etc/relative", "/etc/absolute").replace("    mode: 0644\n", "")
    )
    assert configs.has("hello")
    assert configs.problem("hello") is None
    assert reads == [broken]


def test_configuration_documents_never_show_secrets(tmp_path: Path) -> None:
    """Contents and environment values are secrets: a problem on their lines is named by
    field and position only, without the source line."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    problems: list[str] = []
    configs = ConfigDirectory(config_dir, tmp_path / "files", on_problem=problems.append)
    (config_dir / "hello.yaml").write_text(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\n"
        "environment: [PASSWORD=hunter2, 12345]\n"
    )
    assert not configs.has("hello")
    assert problems == [
        f"ExtensionServiceConfig ignored: {config_dir / 'hello.yaml'}:4:33: error: "
        "environment[1]: expected a string, got an integer"
    ]


def test_two_documents_for_one_service_are_both_refused(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    problems: list[str] = []
    configs = ConfigDirectory(config_dir, tmp_path / "files", on_problem=problems.append)
    document = (
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: hello\nenvironment: [A=1]\n"
    )
    (config_dir / "a.yaml").write_text(document)
    (config_dir / "b.yaml").write_text(document)
    assert not configs.has("hello")
    assert problems == [
        f"ExtensionServiceConfig ignored: {config_dir / 'b.yaml'}:3:7: error: name: "
        f"a second ExtensionServiceConfig for 'hello' (the first is {config_dir / 'a.yaml'}:3:7)"
    ]


def test_the_config_dir_watch_wakes_on_each_change_and_never_on_a_half_written_file(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "config.d"

    async def scenario() -> list[str]:
        seen: list[str] = []
        woken = asyncio.Event()
        watch = DirectoryWatch(directory, woken.set)

        async def after(step: str, change: Callable[[], object]) -> None:
            woken.clear()
            change()
            await asyncio.wait_for(woken.wait(), 10)
            seen.append(step)

        try:
            await after("made", directory.mkdir)  # it did not exist when the watch began
            document = directory / "a.yaml"
            woken.clear()
            with document.open("w") as stream:
                stream.write("name: a\n")
                stream.flush()
                await asyncio.sleep(0.2)
                assert not woken.is_set()  # open, not yet complete: nothing to read yet
            await asyncio.wait_for(woken.wait(), 10)
            seen.append("written")
            await after("renamed in", lambda: (tmp_path / "b.yaml").rename(directory / "b.yaml"))
            await after("removed", document.unlink)
            await after("directory removed", lambda: shutil.rmtree(directory))
            await after("made again", directory.mkdir)
            await after("written again", lambda: document.write_text("name: a\n"))
        finally:
            watch.close()
        return seen

    (tmp_path / "b.yaml").write_text("name: b\n")
    assert asyncio.run(scenario()) == [
        "made", "written", "renamed in", "removed", "directory removed", "made again",
        "written again",
    ]  # fmt: skip


def test_cgroup_dirs_are_found_and_removed_in_every_hierarchy(tmp_path: Path) -> None:
    for controller in ("memory", "pids"):
        leaf = tmp_path / controller / "system" / "extensions" / "a"
        (leaf / "child").mkdir(parents=True)
    (tmp_path / "pids" / "system" / "extensions" / "a" / "cgroup.procs").write_text("1\n2\n")
    assert cgroups.processes("/system/extensions/a", tmp_path) == {1, 2}
    (tmp_path / "pids" / "system" / "extensions" / "a" / "cgroup.procs").unlink()
    assert cgroups.remove("/system/extensions/a", tmp_path) == []
    assert not (tmp_path / "memory" / "system" / "extensions" / "a").exists()
    assert (tmp_path / "memory" / "system" / "extensions").exists()


def test_a_cgroup_kill_signals_every_member_but_the_spared_one(tmp_path: Path) -> None:
    members = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        nested = tmp_path / "system" / "extensions" / "a" / "child"
        nested.mkdir(parents=True)
        (tmp_path / "cgroup.controllers").write_text("pids\n")  # cgroup v2: one hierarchy
        (nested.parent / "cgroup.procs").write_text(f"{members[0].pid}\n{members[1].pid}\n")
        (nested / "cgroup.procs").write_text(f"{members[2].pid}\n")
        sent = cgroups.kill("/system/extensions/a", signal.SIGTERM, members[0].pid, tmp_path)
        assert sent == 2
        assert [m.wait(10) for m in members[1:]] == [-signal.SIGTERM] * 2
        assert members[0].poll() is None
    finally:
        for member in members:
            member.kill()
            member.wait()


def test_mountinfo_escapes_are_decoded(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "90 22 0:50 / /run/extsvc/rootfs/with\\040space rw - overlay overlay rw\n"
    )
    assert mounts.mount_points(info) == [Path("/"), Path("/run/extsvc/rootfs/with space")]


def test_mount_points_under_a_directory_match_escaped_names_and_whole_components(
    tmp_path: Path,
) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "90 22 0:50 / /run/my\\040state/rootfs/a rw - overlay overlay rw\n"
        "91 22 0:50 / /run/my\\040state/rootfs/a/proc rw - proc proc rw\n"
        "92 22 0:50 / /run/my\\040statement rw - tmpfs tmpfs rw\n"
    )
    assert mounts.mount_points(info, under="/run/my state") == [
        Path("/run/my state/rootfs/a"),
        Path("/run/my state/rootfs/a/proc"),
    ]
