"""`extsvc run`'s command line (executor.cli.run): argparse, without click on boot's path."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from extsvc.executor.cli import run
from extsvc.executor.options import ConsoleKind, DaemonOptions, LogRotation
from tests.executor.realrunc import EXTSVC


def options(*argv: str) -> DaemonOptions:
    return run.options_from(run.parser().parse_args(["out", *argv]))


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTSVC_STATE_DIR", raising=False)
    monkeypatch.delenv("EXTSVC_LOG_DIR", raising=False)
    assert options() == DaemonOptions(
        plan=Path("out"),
        state_dir=Path("/run/extsvc"),
        log_dir=Path("/var/log/extsvc"),
        runtime="runc",
        console=ConsoleKind.STDOUT,
        restart_interval=5.0,
        restart_backoff_max=None,
        stop_timeout=10.0,
        check_interval=1.0,
        runtime_timeout=30.0,
        overlay=True,
        log_rotation=LogRotation(max_bytes=1024 * 1024, files=3),
    )


def test_every_option_is_read(tmp_path: Path) -> None:
    parsed = options(
        "--state-dir", "/s", "--log-dir", "/l", "--runtime", "/bin/runc",
        "--host-services", "/h.yaml", "--config-dir", "/c", "--console", "kmsg",
        "--restart-interval", "1m30s", "--restart-backoff-max", "10m", "--stop-timeout", "2s",
        "--check-interval", "250ms", "--runtime-timeout", "1m", "--no-overlay", "-q",
        "--log-max-size", "64Ki", "--log-max-files", "5",
    )  # fmt: skip
    assert parsed == DaemonOptions(
        plan=Path("out"),
        state_dir=Path("/s"),
        log_dir=Path("/l"),
        runtime="/bin/runc",
        host_services=Path("/h.yaml"),
        config_dir=Path("/c"),
        console=ConsoleKind.KMSG,
        restart_interval=90.0,
        restart_backoff_max=600.0,
        stop_timeout=2.0,
        check_interval=0.25,
        runtime_timeout=60.0,
        overlay=False,
        log_rotation=LogRotation(max_bytes=64 * 1024, files=5),
    )


def test_state_and_log_dirs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTSVC_STATE_DIR", "/env/state")
    monkeypatch.setenv("EXTSVC_LOG_DIR", "/env/logs")
    assert (options().state_dir, options().log_dir) == (Path("/env/state"), Path("/env/logs"))
    assert options("--state-dir", "/flag").state_dir == Path("/flag")


def test_a_relative_state_dir_is_made_absolute() -> None:
    # runc resolves a bundle's relative root.path against the bundle directory.
    assert options("--state-dir", "state").state_dir == Path.cwd() / "state"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["out", "--stop-timeout", "5 parsecs"], "invalid duration '5 parsecs'"),
        (["out", "--console", "serial"], "invalid choice: 'serial'"),
        (["out", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        ([], "the following arguments are required: OUT"),
        (["out", "--log-max-size", "1k"], "log size '1k' is outside 4Ki (4096) to 1Gi"),
        (["out", "--log-max-size", "2Gi"], "log size '2Gi' is outside 4Ki (4096) to 1Gi"),
        (["out", "--log-max-size", "9" * 5000], "log size '99999999"),
        (["out", "--log-max-size", "lots"], "invalid size 'lots'"),
        (["out", "--log-max-files", "0"], "invalid count of files '0': write 1 to 100"),
        (["out", "--log-max-files", "101"], "invalid count of files '101'"),
        (["out", "--log-max-files", "9" * 5000], "invalid count of files '99999999"),
    ],
)
def test_usage_errors_exit_2_with_one_message(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run.main(argv) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert err.startswith("usage: extsvc run")
    assert len(err) < 2000  # a huge value is not echoed in full
    assert "Traceback" not in err


def test_the_callers_signal_mask_is_kept(tmp_path: Path) -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert run.main([str(tmp_path), "--runtime", "no-such-runc"]) in (1, 3)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_help_lists_every_option_and_the_dispatcher_lists_run() -> None:
    run_help = subprocess.run([*EXTSVC, "run", "--help"], capture_output=True, text=True)
    assert run_help.returncode == 0
    for flag in ("--state-dir", "--log-dir", "--runtime", "--host-services", "--config-dir",
                 "--console", "--restart-interval", "--restart-backoff-max", "--stop-timeout",
                 "--check-interval", "--runtime-timeout", "--no-overlay", "--quiet",
                 "--log-max-size", "--log-max-files"):  # fmt: skip
        assert flag in run_help.stdout
    top = subprocess.run([*EXTSVC, "--help"], capture_output=True, text=True)
    assert "  run " in top.stdout


def test_leftover_tasks_are_cancelled_and_waited_for_a_bounded_time() -> None:
    import asyncio

    from extsvc.executor.daemon.main import end_leftover_tasks

    async def obedient() -> None:
        await asyncio.sleep(3600)

    async def stubborn() -> None:  # drops every cancellation, as a buggy task could
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    async def scenario() -> tuple[int, int]:
        first = asyncio.ensure_future(obedient())
        await asyncio.sleep(0)
        alone = await end_leftover_tasks(timeout=1.0)
        assert first.cancelled()
        second = asyncio.ensure_future(stubborn())
        await asyncio.sleep(0)
        stuck = await end_leftover_tasks(timeout=0.2)
        assert not second.done()
        return alone, stuck

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(scenario()) == (0, 1)
    finally:
        # The stubborn task stays pending; drop it without waiting (as os._exit would).
        loop.close()
