"""Reload with real runc: SIGHUP never kills, and only the changed service is restarted. Needs
root."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.executor.realrunc import (
    SLEEP_LOOP,
    compile_plan,
    recompile,
    running_daemon,
    running_pid,
    shell_service,
    unique,
    wait_for,
)

pytestmark = pytest.mark.runc


def test_sighup_reloads_and_never_kills(tmp_path: Path) -> None:
    name = unique("hup")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, SLEEP_LOOP)})
    with running_daemon(tmp_path, out, [name]) as daemon:
        pid = running_pid(daemon, f"ext-{name}")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded: 1 unchanged" in daemon.stderr(), 10, "the reload")
        assert daemon.process.poll() is None
        assert running_pid(daemon, f"ext-{name}") == pid
        assert daemon.stop() == 0


def test_reload_restarts_only_the_changed_service(tmp_path: Path) -> None:
    changed, same = unique("changed"), unique("same")
    out, _ = compile_plan(
        tmp_path,
        {
            changed: shell_service(changed, f"echo v1; {SLEEP_LOOP}"),
            same: shell_service(same, SLEEP_LOOP),
        },
    )
    with running_daemon(tmp_path, out, [changed, same]) as daemon:
        before = {n: running_pid(daemon, f"ext-{n}") for n in (changed, same)}
        recompile(tmp_path, changed, shell_service(changed, f"echo v2; {SLEEP_LOOP}"))
        listed = daemon.extsvc("service")
        assert "changed on disk since it was loaded; run `extsvc reload`" in listed.stderr
        reloaded = daemon.extsvc("reload")
        assert reloaded.returncode == 0, reloaded.stderr
        assert reloaded.stdout.strip() == f"reloaded: restarted ext-{changed}; 1 unchanged"
        after = {n: running_pid(daemon, f"ext-{n}") for n in (changed, same)}
        assert after[same] == before[same]
        assert after[changed] != before[changed]
        wait_for(lambda: "v2" in daemon.logs(f"ext-{changed}"), 10, "the new bundle's output")
        assert "changed on disk" not in daemon.extsvc("service").stderr
        # A plan that fails validation is refused with its diagnostics; nothing is touched.
        plan = out / "plan.json"
        plan.write_text(plan.read_text().replace('"restart": "always"', '"restart": "sometimes"'))
        refused = daemon.extsvc("reload")
        assert refused.returncode == 1
        assert "reload refused, the running services are kept" in refused.stderr
        assert re.search(r"plan\.json:\d+:\d+: .*sometimes", refused.stderr)
        assert {n: running_pid(daemon, f"ext-{n}") for n in (changed, same)} == after
        assert daemon.stop() == 0
