"""ExtensionServiceConfig and environmentFile with real runc. Needs root.

At run time (``extsvc run --config-dir``): a ``configuration: true`` service waits
visibly for its document, starts with the document's file and variables inside the
container (after its environment file's), restarts alone when the document changes,
stops and waits again when it is removed, and never starts on an invalid document,
whose location shows in its events. At compile time (``--service-config``): the
files baked into the bundle are what the container sees.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    compile_plan,
    running_daemon,
    shell_service,
    traces,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

SHOW = 'cat /etc/app/app.conf; echo "GREETING=$GREETING FROM_FILE=$FROM_FILE ORDER=$ORDER"; '


def document(name: str, content: str, greeting: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1alpha1",
            "kind": "ExtensionServiceConfig",
            "name": name,
            "configFiles": [{"content": content, "mountPath": "/etc/app/app.conf"}],
            "environment": [f"GREETING={greeting}", "ORDER=document"],
        }
    )


def configured_service(name: str, env_file: Path) -> str:
    tree = json.loads(
        shell_service(name, SHOW + IDLE, depends=[{"configuration": True}], restart="always")
    )
    tree["container"]["environmentFile"] = str(env_file)
    tree["container"]["environment"] = ["ORDER=service"]
    return json.dumps(tree)


def test_run_time_configuration_end_to_end(tmp_path: Path) -> None:
    app, other = unique("app"), unique("other")
    env_file = tmp_path / "app.env"
    env_file.write_text("# read at each start\nexport FROM_FILE='the file'\nORDER=file\n")
    out, _ = compile_plan(
        tmp_path,
        {app: configured_service(app, env_file), other: shell_service(other, IDLE)},
    )
    config_dir = tmp_path / "config.d"
    config_dir.mkdir()
    app_id, other_id = f"ext-{app}", f"ext-{other}"
    with running_daemon(tmp_path, out, [app, other], "--config-dir", str(config_dir)) as daemon:
        # Waits visibly until its document appears.
        waiting = daemon.wait_state(app_id, "Waiting")
        assert waiting["lastEvent"] == f'Waiting for configuration "{app}"'
        other_pid = daemon.wait_state(other_id, "Running")["pid"]

        # An invalid document is reported, located, and never starts the service.
        broken = config_dir / "app.yaml"
        broken.write_text(
            "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\n"
            f"name: {app}\nconfigFiles:\n  - content: x\n    mountPath: etc/app/app.conf\n"
        )
        refused = f'Waiting for configuration "{app}" (refused: {broken}:6:16: error: '
        wait_for(lambda: daemon.service(app_id)["lastEvent"].startswith(refused), 10, "refusal")
        assert "must be an absolute file path" in daemon.service(app_id)["lastEvent"]
        assert daemon.service(app_id)["runs"] == 0
        assert f"{broken}:6:16: error: configFiles[0].mountPath" in daemon.stderr()

        # A valid one: it starts and sees the file and the variables, in Talos's order
        # (environment file, then the service's, then the document's; last one wins).
        broken.write_text(document(app, "key = first\n", "hello"))
        daemon.wait_state(app_id, "Running")
        wait_for(lambda: len(daemon.logs(app_id)) >= 2, 10, "the first run's output")
        assert daemon.logs(app_id)[:2] == [
            "key = first",
            "GREETING=hello FROM_FILE=the file ORDER=document",
        ]
        spec = json.loads((tmp_path / "state" / "bundles" / app / "config.json").read_text())
        env = spec["process"]["env"]
        assert (
            env.index("FROM_FILE=the file")
            < env.index("ORDER=service")
            < env.index("ORDER=document")
        )
        source = Path(spec["mounts"][-1]["source"])
        assert spec["mounts"][-1]["destination"] == "/etc/app/app.conf"
        assert source.stat().st_mode & 0o777 == 0o600

        # A change restarts that service, and no other.
        broken.write_text(document(app, "key = second\n", "again"))
        wait_for(lambda: daemon.service(app_id)["runs"] == 2, 15, "the restart")
        wait_for(lambda: "key = second" in daemon.logs(app_id), 10, "the second run's output")
        assert "GREETING=again FROM_FILE=the file ORDER=document" in daemon.logs(app_id)
        assert daemon.service(other_id)["pid"] == other_pid
        assert daemon.service(other_id)["runs"] == 1

        # Removing it stops the service, which waits again.
        broken.unlink()
        wait_for(
            lambda: daemon.service(app_id)["lastEvent"] == f'Waiting for configuration "{app}"',
            15,
            "the service to wait again",
        )
        assert daemon.service(app_id)["state"] == "Waiting"
        assert daemon.service(other_id)["pid"] == other_pid
        assert daemon.stop() == 0
    # Secrets never reach the executor's own output.
    assert "key = first" not in daemon.stderr() and "hello" not in daemon.stderr()
    assert traces(tmp_path / "state", [app, other]) == []


def test_compile_time_configuration_is_baked_into_the_bundle(tmp_path: Path) -> None:
    app = unique("baked")
    env_file = tmp_path / "app.env"
    env_file.write_text('FROM_FILE="line\\tone"\n')
    out, _ = compile_plan(tmp_path, {app: configured_service(app, env_file)})
    configs = tmp_path / "node"
    configs.mkdir()
    (configs / "app.yaml").write_text(document(app, "key = baked\n", "baked"))
    subprocess.run(
        [*EXTSVC, "compile", str(tmp_path / "src"), "-o", str(out),
         "--rootfs-base", str(tmp_path / "rootfs"), "--service-config", str(configs)],
        check=True, capture_output=True,
    )  # fmt: skip
    baked = out / "bundles" / app / "config" / "etc-app-app.conf"
    assert baked.read_text() == "key = baked\n" and baked.stat().st_mode & 0o777 == 0o600
    # No --config-dir: the configuration is in the bundle, nothing to wait for.
    with running_daemon(tmp_path, out, [app]) as daemon:
        daemon.wait_state(f"ext-{app}", "Running")
        wait_for(lambda: len(daemon.logs(f"ext-{app}")) >= 2, 10, "the output")
        assert daemon.logs(f"ext-{app}")[:2] == [
            "key = baked",
            "GREETING=baked FROM_FILE=line\tone ORDER=document",
        ]
        assert daemon.stop() == 0
    assert traces(tmp_path / "state", [app]) == []
