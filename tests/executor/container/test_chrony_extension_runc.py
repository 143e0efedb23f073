"""A real daemon from Debian's packages as an extension service. Root.

examples/chrony/build_extension.py builds chrony's extension image (chronyd, chronyc
and their libraries, from `apt-get download`: Debian's mirror must be reachable the
first time; the .debs are cached outside the repository, EXTSVC_DEB_CACHE or
~/.cache/extsvc/debs) as an OCI layout; then, as a user would: `extsvc extension
install`, `extsvc compile`, `extsvc run`, and chronyd must answer chronyc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.executor.realrunc import EXTSVC, messages, running_daemon, unique, wait_for

pytestmark = pytest.mark.runc

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "examples" / "chrony" / "build_extension.py"
CHRONY_UID = 330


def deb_cache() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "extsvc" / "debs"
    return Path(os.environ.get("EXTSVC_DEB_CACHE", default))


@pytest.fixture
def name() -> Iterator[str]:
    """A service name no other test uses, and its state directory removed afterwards."""
    name = unique("chrony")
    yield name
    shutil.rmtree(f"/var/lib/{name}", ignore_errors=True)


def run(*argv: str | Path) -> str:
    done = subprocess.run([*map(str, argv)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def test_chronyd_from_debian_runs_as_an_extension_and_answers_chronyc(
    tmp_path: Path, name: str
) -> None:
    image, layout, root = tmp_path / "image", tmp_path / "layout", tmp_path / "root"
    run(sys.executable, BUILD, image, "--name", name, "--cache", deb_cache(), "--layout", layout)
    root.mkdir()
    installed = run(*EXTSVC, "extension", "install", layout, "--root", root)
    assert installed.startswith(f"{name}: installed ")
    out = tmp_path / "out"
    run(*EXTSVC, "compile", root / "usr/local/etc/containers", "-o", out,
        "--rootfs-base", root / "usr/local/lib/containers")  # fmt: skip
    service_id = f"ext-{name}"
    with running_daemon(tmp_path, out, [name]) as daemon:
        daemon.wait_state(service_id, "Running", timeout=30)
        # The x-extsvc health check: chronyc as chronyd's user, through the unix socket.
        wait_for(
            lambda: daemon.service(service_id)["health"]["healthy"] is True,
            30,
            "chronyc tracking to answer",
        )
        assert "Health check successful" in messages(daemon.service(service_id))
        # And by hand, as an operator would: runc exec in the running container.
        runc = ["runc", "--root", str(daemon.state_dir / "runc"), "exec"]
        as_chrony = [*runc, "--user", f"{CHRONY_UID}:{CHRONY_UID}", service_id]
        tracking = run(*as_chrony, "/usr/bin/chronyc", "-n", "tracking")
        assert "Reference ID" in tracking and "Leap status" in tracking
        assert run(*as_chrony, "/usr/bin/chronyc", "-n", "sources").startswith("MS Name/IP")
        # Root holds none of CAP_DAC_OVERRIDE here: chronyd's socket is not its to reach.
        refused = subprocess.run(
            [*runc, service_id, "/usr/bin/chronyc", "-n", "tracking"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode != 0 and "Cannot talk to daemon" in refused.stdout
        assert daemon.service(service_id)["runs"] == 1
        assert daemon.stop() == 0
    # At its stop chronyd saved its drift file, as its own user, in the directory the
    # executor created for it (x-extsvc mountSources).
    state = Path(f"/var/lib/{name}")
    assert (state.stat().st_uid, state.stat().st_mode & 0o777) == (CHRONY_UID, 0o750)
    assert (state / "chrony.drift").stat().st_uid == CHRONY_UID
    log = (tmp_path / "logs" / f"{service_id}.log").read_text()
    assert "chronyd version 4." in log
    assert "chrony.drift" not in log  # no "Could not open ….drift.tmp : Permission denied"
