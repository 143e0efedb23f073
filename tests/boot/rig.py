"""What the shared systemd machine of tests/boot is booted with: its services and the
options of the unit `extsvc systemd-unit` writes for it."""

from __future__ import annotations

from tests.executor.realrunc import IDLE, SLEEP_LOOP, shell_service

# beta ignores SIGTERM (sh as PID 1 without a trap) and has a 2 s grace of its own
# (x-extsvc stopTimeout): its stop takes 2 s, so a reload that changes it is under way
# that long, and a `systemctl reload` that does not wait for it returns visibly early.
SLOW_BETA = shell_service(
    "beta",
    f"echo started beta; {SLEEP_LOOP}",
    depends=[{"service": "ext-alpha"}],
    extsvc={"stopTimeout": "2s"},
)
# alpha <- beta: one dependency, so a stop has two levels.
SERVICES = {"alpha": shell_service("alpha", f"echo started alpha; {IDLE}"), "beta": SLOW_BETA}
UNIT_OPTIONS = ("--stop-timeout", "5s", "--restart-interval", "1s", "--watchdog", "10s")
