"""extsvc under a real systemd (PID 1 in systemd-nspawn), run by the unit
`extsvc systemd-unit` writes, with real runc nested inside.

The machine boots once for all of tests/boot (conftest.py); these checks run in this
order and each leaves the unit running, except the last, which stops it (the
``extsvc_active`` fixture starts it again for whatever runs after). One check boots a
second machine with systemd 254 from bookworm-backports (``machine_254``): the unit it
gets reloads with Type=notify-reload.
"""

from __future__ import annotations

import time

from tests.boot.rig import SERVICES
from tests.executor.realrunc import IDLE, shell_service
from tests.support.nspawn import LOG_DIR, STATE_DIR, UNIT, VENV, Machine

IDS = sorted(f"ext-{name}" for name in SERVICES)
# After a recovery: long enough for a second, unwanted run (--restart-interval 1s) to show.
SETTLE = 3.0


def starts(machine: Machine, name: str) -> int:
    """How many times the service's container began: its "started NAME" line, logged
    once per run."""
    log = machine.root / str(LOG_DIR).lstrip("/")
    lines = 0
    for path in log.glob(f"ext-{name}.log*"):
        lines += sum(1 for line in path.read_text(errors="replace").splitlines()
                     if line.endswith(f"started {name}"))  # fmt: skip
    return lines


def inits(machine: Machine, name: str) -> int:
    """Live container inits of the service (its `sh -c "echo started NAME; ..."`)."""
    found = machine.run("pgrep", "-f", f"^/bin/sh -c echo started {name};", check=False)
    return len(found.stdout.split())


def test_services_reach_running_at_boot(machine: Machine) -> None:
    """Enabled before the boot: systemd starts the executor, the services run."""
    machine.wait_for(
        lambda: all(s["state"] == "Running" for s in machine.services().values()),
        90,
        "every service Running after the boot",
    )
    assert machine.show("ActiveState") == "active"
    assert machine.show("SubState") == "running"
    assert machine.show("NRestarts") == "0"
    # The unit starts the installed entry point, found from the wheel's RECORD.
    assert f"path={VENV}/bin/extsvc" in machine.show("ExecStart")
    for name in SERVICES:
        logs = machine.extsvc("logs", name, "--log-dir", str(LOG_DIR)).stdout
        assert f"started {name}" in logs.splitlines()
        assert inits(machine, name) == 1
    assert sorted(machine.runc_containers()) == IDS


def test_reload_returns_once_the_change_is_applied(extsvc_active: Machine) -> None:
    """`systemctl reload` after recompiling: when it returns, the executor runs the new
    plan (a bare `kill -HUP` returned before, 3 times in 11). Here systemd 252 runs
    ExecReload=extsvc reload."""
    assert "ExecReload" in extsvc_active.read(f"/etc/systemd/system/{UNIT}")
    reload_returns_once_applied(extsvc_active)
    journal = extsvc_active.journal("-u", UNIT, "-o", "cat")
    assert "Reloaded" in journal


def test_systemd_254_reloads_with_notify_reload_and_waits(machine_254: Machine) -> None:
    """On systemd >= 253 the unit (its version read by `extsvc systemd-unit` from
    `systemctl --version`) is Type=notify-reload: systemd sends SIGHUP and waits for the
    executor's RELOADING=1 ... READY=1."""
    machine = machine_254
    assert machine.run("systemctl", "--version").stdout.startswith("systemd 254")
    unit = machine.read(f"/etc/systemd/system/{UNIT}")
    assert "Type=notify-reload" in unit.splitlines()
    assert "ExecReload" not in unit
    machine.wait_for(
        lambda: all(s["state"] == "Running" for s in machine.services().values()),
        90,
        "every service Running after the boot",
    )
    reload_returns_once_applied(machine)


def reload_returns_once_applied(machine: Machine) -> None:
    """beta takes 2 s to stop (SLOW_BETA), so a reload that did not wait is seen still
    stopping it."""
    old_beta = machine.runc_states()["ext-beta"]["pid"]
    machine.add_service("gamma", shell_service("gamma", f"echo started gamma; {IDLE}"))
    machine.add_service("beta", shell_service(
        "beta", f"echo started beta; echo version 2; {IDLE}", depends=[{"service": "ext-alpha"}]
    ))  # fmt: skip
    machine.recompile()
    beta_runs = starts(machine, "beta")
    # Reload, then look at once (runc, a Go binary: no interpreter start in between).
    containers = machine.runc_states(after=f"systemctl reload {UNIT}")
    assert containers.get("ext-beta", {}).get("pid") != old_beta, "the old beta still runs"
    listing = machine.listing()
    assert listing["plan"]["changedOnDisk"] is False, listing["plan"]
    assert sorted(s["id"] for s in listing["services"]) == [*IDS, "ext-gamma"]
    # beta was stopped and started again with its new bundle, gamma is new.
    machine.wait_for(
        lambda: all(s["state"] == "Running" for s in machine.services().values()),
        60,
        "every service Running after the reload",
    )
    assert starts(machine, "beta") == beta_runs + 1
    assert "version 2" in machine.extsvc("logs", "beta", "--log-dir", str(LOG_DIR)).stdout
    assert machine.show("ActiveState") == "active"


def test_a_frozen_executor_is_killed_by_the_watchdog_and_recovers_each_service_once(
    extsvc_active: Machine,
) -> None:
    machine = extsvc_active
    names = sorted(s.removeprefix("ext-") for s in machine.services())
    before = {name: starts(machine, name) for name in names}
    restarts = int(machine.show("NRestarts"))
    frozen = machine.show("MainPID")
    machine.run("kill", "-STOP", frozen)
    began = time.monotonic()
    machine.wait_for(
        lambda: (
            machine.show("MainPID") not in ("0", frozen) and machine.show("ActiveState") == "active"
        ),
        90,
        "systemd to kill the frozen executor and start it again",
    )
    took = time.monotonic() - began
    assert "Watchdog timeout" in machine.journal("-u", UNIT, "-o", "cat")
    assert int(machine.show("NRestarts")) == restarts + 1
    machine.wait_for(
        lambda: all(s["state"] == "Running" for s in machine.services().values()),
        60,
        "every service Running after the restart",
    )
    time.sleep(SETTLE)
    # Exactly once: one new run per service, one container and one init each.
    assert {name: starts(machine, name) - before[name] for name in names} == dict.fromkeys(
        names, 1
    ), f"restarted after {took:.1f}s"
    assert sorted(machine.runc_containers()) == [f"ext-{n}" for n in names]
    assert {name: inits(machine, name) for name in names} == dict.fromkeys(names, 1)


def test_stop_leaves_no_runc_container_mount_or_cgroup(extsvc_active: Machine) -> None:
    machine = extsvc_active
    names = sorted(s.removeprefix("ext-") for s in machine.services())
    machine.systemctl("stop", UNIT)
    assert machine.show("ActiveState") == "inactive"
    assert machine.show("Result") == "success"
    assert machine.run("pgrep", "-x", "runc", check=False).stdout == ""
    assert machine.runc_containers() == []
    assert {name: inits(machine, name) for name in names} == dict.fromkeys(names, 0)
    mounts = machine.sh("cat /proc/self/mountinfo")
    assert str(STATE_DIR) not in mounts
    # Wherever the containers' cgroups were (/system/extensions/NAME, or below the unit's).
    named = " -o ".join(f"-name {name}" for name in [*names, "extensions"])
    left = machine.sh(f"find /sys/fs/cgroup -mindepth 2 -type d \\( {named} \\)").split()
    assert left == []
