"""One real systemd machine for every test under tests/boot (tests/support/nspawn.py).

The boot is shared (about a minute with a cached image), so a test leaves the unit as
it found it or says otherwise; ``extsvc_active`` puts it back to active first. The
machine is booted with SERVICES and the unit `extsvc systemd-unit` writes with
UNIT_OPTIONS (both in tests/boot/rig.py); a test that needs another service adds it with
``machine.add_service`` + ``machine.recompile`` + a reload.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.boot.rig import SERVICES, UNIT_OPTIONS
from tests.support import nspawn
from tests.support.ci import cannot_run


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nspawn.Machine]:
    reason = nspawn.missing()
    if reason is not None:
        cannot_run(reason, "the systemd rig")
    workdir = tmp_path_factory.mktemp("systemd-rig")
    with nspawn.boot(workdir, SERVICES, UNIT_OPTIONS) as booted:
        yield booted


@pytest.fixture(scope="module")
def machine_254(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nspawn.Machine]:
    """Another machine, its packages from bookworm-backports (systemd 254), so its unit
    is the one a systemd >= 253 gets. Only for the checks that differ there."""
    reason = nspawn.missing()
    if reason is not None:
        cannot_run(reason, "the systemd rig")
    workdir = tmp_path_factory.mktemp("systemd-rig-254")
    with nspawn.boot(workdir, SERVICES, UNIT_OPTIONS, release=nspawn.BACKPORTS) as booted:
        yield booted


@pytest.fixture
def extsvc_active(machine: nspawn.Machine) -> nspawn.Machine:
    """The machine with the unit active and every service of SERVICES Running."""
    if machine.show("ActiveState") != "active":
        machine.systemctl("reset-failed", nspawn.UNIT, check=False)
        machine.systemctl("start", nspawn.UNIT)
    machine.wait_for(
        lambda: all(machine.services()[f"ext-{n}"]["state"] == "Running" for n in SERVICES),
        60,
        "every service Running",
    )
    return machine
