"""The same plan through the simulation and through the real executor: the same starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from extsvc.compiler.format.plan import load_plan
from extsvc.executor.simulate.boot import simulate
from extsvc.executor.simulate.facts import facts_from_tree
from tests.executor.realrunc import (
    IDLE,
    bind,
    compile_plan,
    running_daemon,
    shell_service,
    unique,
)

pytestmark = pytest.mark.runc

# Runs 3 s, failing the first time and succeeding the second (the count survives in a
# host dir). While it runs it is "up" (as in Talos), so its dependents start then; 3 s
# leaves them time to start on a loaded machine before its second run.
FAIL_ONCE = (
    "n=$(( $(cat /data/count 2>/dev/null || echo 0) + 1 )); echo $n > /data/count; "
    'sleep 3; [ "$n" -ge 2 ]'
)


def test_simulated_and_real_boot_start_services_in_the_same_order(tmp_path: Path) -> None:
    base, setup, app, gated = unique("base"), unique("setup"), unique("app"), unique("gated")
    state = tmp_path / "state-data"
    state.mkdir()
    flag = tmp_path / "flag"
    flag.touch()
    services = {
        base: shell_service(base, IDLE),
        setup: shell_service(
            setup,
            FAIL_ONCE,
            restart="untilSuccess",
            depends=[{"service": f"ext-{base}"}],
            mounts=[bind(state, "/data")],
        ),
        app: shell_service(app, IDLE, depends=[{"service": f"ext-{setup}"}]),
        gated: shell_service(gated, IDLE, depends=[{"service": f"ext-{app}"}, {"path": str(flag)}]),
    }
    out, _ = compile_plan(tmp_path, services)
    facts = facts_from_tree(
        {
            "until": "1m",
            "restartInterval": "200ms",  # what realrunc's FAST_OPTIONS give the daemon
            "paths": {str(flag): True},
            "services": {
                f"ext-{setup}": {"runs": [{"exit": 1, "after": "3s"}, {"exit": 0, "after": "3s"}]}
            },
        }
    )
    simulated = [service for _, service in simulate(load_plan(out), facts).starts]

    names = [base, setup, app, gated]
    with running_daemon(tmp_path, out, names) as daemon:
        daemon.wait_state(f"ext-{gated}", "Running", timeout=30)
        daemon.wait_state(f"ext-{setup}", "Finished", timeout=30)
        started = re.findall(r"^(ext-\S+) \[Running\]: Started task", daemon.stderr(), re.M)
    assert simulated == [f"ext-{x}" for x in (base, setup, app, gated, setup)]
    assert started == simulated
