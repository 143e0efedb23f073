"""ExtensionServiceConfig documents at run time: applied at start, errors reported once with a
position, no secret ever shown, the config dir watched without reading a half-written file."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from extsvc.executor.host.inotify import DirectoryWatch
from extsvc.executor.supervise.configwatch import ConfigDirectory, source_name
from tests.executor.fakes import make_service


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
