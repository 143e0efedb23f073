"""What real daemons need, with real runc containers. Needs root.

Busybox stands in for the daemons: ``su`` drops root as chronyd's ``-u`` does,
``syslogd`` without ``-n`` forks into the background as a daemon without its
foreground flag does. The chrony extension built from Debian's packages runs
all of it for real (tests/executor/container/test_chrony_extension_runc.py).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    IDLE,
    compile_plan,
    messages,
    running_daemon,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc

DAEMON_UID = 330
PASSWD = f"root:x:0:0:root:/:/bin/sh\ndaemon:x:{DAEMON_UID}:{DAEMON_UID}:daemon:/:/bin/sh\n"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A fresh directory below /run (where the executor may create mount sources)."""
    path = Path("/run/extsvc-tests") / f"daemon-needs-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def state_mount(source: Path) -> dict[str, object]:
    return {"source": str(source), "destination": "/state", "type": "bind",
            "options": ["bind", "rw"]}  # fmt: skip


def test_a_mount_source_owned_by_the_daemon_user_lets_it_write(
    tmp_path: Path, run_dir: Path
) -> None:
    owned, talos = unique("owned"), unique("talos")
    # Drops root, then writes its state: chronyd's drift file, bgpd's pid file.
    script = (
        "/bin/busybox su -s /bin/sh daemon -c "
        "'echo drift > /state/drift && echo wrote || echo could not write'; " + IDLE
    )
    owner = {
        "mountSources": [
            {"path": str(run_dir / owned), "owner": {"uid": DAEMON_UID, "gid": DAEMON_UID},
             "mode": "0750"},
        ]
    }  # fmt: skip
    services = {
        owned: shell_service(owned, script, mounts=[state_mount(run_dir / owned)], extsvc=owner),
        talos: shell_service(talos, script, mounts=[state_mount(run_dir / talos)]),
    }
    out, base = compile_plan(tmp_path, services)
    for name in services:
        (base / name / "etc" / "passwd").write_text(PASSWD)
    with running_daemon(tmp_path, out, list(services)) as daemon:
        for name in services:
            wait_for(lambda n=name: bool(daemon.logs(f"ext-{n}")), 20, f"{name}'s line")
        assert daemon.logs(f"ext-{owned}")[-1] == "wrote"
        status = (run_dir / owned).stat()
        assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (330, 330, 0o750)
        assert (run_dir / owned / "drift").read_text() == "drift\n"
        assert (run_dir / owned / "drift").stat().st_uid == DAEMON_UID
        # Without the key: Talos's root:root 0700, which the daemon's user cannot enter.
        assert "Permission denied" in "\n".join(daemon.logs(f"ext-{talos}"))
        assert daemon.logs(f"ext-{talos}")[-1] == "could not write"
        status = (run_dir / talos).stat()
        assert (status.st_uid, status.st_mode & 0o7777) == (0, 0o700)
        assert not (run_dir / talos / "drift").exists()
        assert daemon.stop() == 0


def test_a_check_of_its_own_reaches_a_socket_the_trimmed_service_cannot(tmp_path: Path) -> None:
    # The daemon's state is its user's alone (chronyd's /run/chrony); the service keeps
    # only the capabilities it needs, so root in `runc exec` cannot read it either.
    setup = (
        "mkdir -m 700 /run/priv && echo answer > /run/priv/socket && "
        f"chown -R {DAEMON_UID}:{DAEMON_UID} /run/priv; " + IDLE
    )
    trimmed = ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]
    check = {"exec": ["/bin/cat", "/run/priv/socket"], "interval": "300ms", "timeout": "5s",
             "retries": 1}  # fmt: skip
    names = {"root": unique("asroot"), "user": unique("asuser"), "cap": unique("ascap")}
    own = {
        "root": {},
        "user": {"user": {"uid": DAEMON_UID, "gid": DAEMON_UID}},
        "cap": {"capabilities": ["CAP_DAC_OVERRIDE"]},
    }
    services = {
        name: shell_service(
            name, setup, extsvc={"capabilities": trimmed, "health": {**check, **own[key]}}
        )
        for key, name in names.items()
    }
    out, _ = compile_plan(tmp_path, services)
    with running_daemon(tmp_path, out, list(services)) as daemon:
        for key in ("user", "cap"):
            found = daemon.wait_state(f"ext-{names[key]}", "Running", timeout=20)
            wait_for(
                lambda k=key: daemon.service(f"ext-{names[k]}")["health"]["healthy"] is True,
                30,
                f"{key}'s check to pass: {found}",
            )
        service_id = f"ext-{names['root']}"
        wait_for(
            lambda: daemon.service(service_id)["health"]["healthy"] is False,
            30,
            "root's check to fail",
        )
        assert "Health check failed: exit code 1: cat: can't open '/run/priv/socket': " in (
            "\n".join(messages(daemon.service(service_id)))
        )
        assert daemon.service(service_id)["state"] == "Running"
        assert daemon.stop() == 0


def test_a_daemon_that_forks_is_named_in_its_event(tmp_path: Path) -> None:
    name = unique("forks")
    # syslogd without -n forks into the background: the init exits 0 at once.
    out, _ = compile_plan(
        tmp_path, {name: shell_service(name, "exec /bin/busybox syslogd -O /run/messages")}
    )
    with running_daemon(tmp_path, out, [name]) as daemon:
        service_id = f"ext-{name}"
        wait_for(lambda: daemon.service(service_id)["runs"] >= 2, 30, "a second run")
        seen = messages(daemon.service(service_id))
        assert (
            f'Task "{service_id}" finished: exit code 0; the entrypoint exited 0 at once '
            "(within 1s of its start): a daemon that forks needs its foreground flag; "
            "restarting forever in 200ms"
        ) in seen
        assert daemon.stop() == 0
