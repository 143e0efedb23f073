"""`extsvc run`: parsed without click, so that boot's critical path is what it must be.

`extsvc run` is the one command whose start-up time is a product figure (cold
start -> first line at most twice a bare `runc run`). click costs about
20 ms to import, argparse 2; the options are few and flat. So the dispatcher
(extsvc.entry) sends `run` straight here, and this module, before it imports
anything heavy: blocks the daemon's signals (its first instruction: an early
SIGTERM waits for the handlers and still cleans up), parses the options, runs the
start-up (executor.daemon.startup: checks, plan, lock, the first creates begun), and
only then imports asyncio and the supervisor, while those creates run.

Errors: one line on stderr and the error's exit code (DESIGN §7): 2 for usage,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from extsvc.compiler.format.diagnostics import short_repr
from extsvc.compiler.format.durations import exact_duration
from extsvc.compiler.format.exitcodes import EXIT_USAGE
from extsvc.compiler.format.quantities import parse_duration, parse_size
from extsvc.executor.daemon import signals
from extsvc.executor.errors import ExecutorError
from extsvc.executor.locations import DEFAULT_LOG_DIR, DEFAULT_STATE_DIR
from extsvc.executor.options import (
    DEFAULT_CHECK_INTERVAL,
    DEFAULT_LOG_ROTATION,
    DEFAULT_RESTART_INTERVAL,
    DEFAULT_STOP_TIMEOUT,
    LOG_MAX_FILES_RANGE,
    LOG_MAX_SIZE_RANGE,
    RUNC_COMMAND_TIMEOUT,
    ConsoleKind,
    DaemonOptions,
    LogRotation,
    LogTarget,
)


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def log_max_size(text: str) -> int:
    """``--log-max-size``: a size (1Mi, 500k, 65536) within LOG_MAX_SIZE_RANGE."""
    low, high = LOG_MAX_SIZE_RANGE
    try:
        size = parse_size(text)
    except ValueError as error:
        if str(error).startswith("invalid"):
            raise argparse.ArgumentTypeError(str(error)) from None
        size = high + 1  # more than any memory limit: beyond this range as well
    if not low <= size <= high:
        raise argparse.ArgumentTypeError(
            f"log size {short_repr(text)} is outside 4Ki ({low}) to 1Gi ({high} bytes)"
        )
    return size


def log_max_files(text: str) -> int:
    """``--log-max-files``: how many files per service, within LOG_MAX_FILES_RANGE."""
    low, high = LOG_MAX_FILES_RANGE
    digits = text.strip()
    if not (digits.isdigit() and len(digits) <= len(str(high)) and low <= int(digits) <= high):
        raise argparse.ArgumentTypeError(
            f"invalid count of files {short_repr(text)}: write {low} to {high}"
        )
    return int(digits)


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` (a host is required: nothing listens on every
    interface unless asked, e.g. ``0.0.0.0:9477``)."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"{text[:80]!r} is not ADDR:PORT (e.g. 127.0.0.1:9477, [::1]:9477)"
        )
    return host, int(port)


def cgroup_parent(text: str) -> str:
    from extsvc.executor.runtime.placement import checked_setting

    try:
        return checked_setting(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(
        prog="extsvc run",
        description="Run the compiled plan in OUT until SIGTERM/SIGINT (foreground daemon, "
        "as root). SIGHUP reloads the plan (as `extsvc reload`).",
    )
    run.add_argument("out", type=Path, metavar="OUT", help="compiled output (extsvc compile -o)")
    run.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("EXTSVC_STATE_DIR") or DEFAULT_STATE_DIR),
        help="Executor state directory (holds the control socket) "
        f"[env: EXTSVC_STATE_DIR; default: {DEFAULT_STATE_DIR}]",
    )
    run.add_argument(
        "--log-dir",
        type=Path,
        default=Path(os.environ.get("EXTSVC_LOG_DIR") or DEFAULT_LOG_DIR),
        help="One ext-<name>.log per service, size-rotated "
        f"[env: EXTSVC_LOG_DIR; default: {DEFAULT_LOG_DIR}]",
    )
    run.add_argument(
        "--log-max-size",
        type=log_max_size,
        default=DEFAULT_LOG_ROTATION.max_bytes,
        metavar="SIZE",
        help="Rotate a service's log file when it would grow beyond this (4Ki to 1Gi) "
        "[default: 1Mi]",
    )
    run.add_argument(
        "--log-max-files",
        type=log_max_files,
        default=DEFAULT_LOG_ROTATION.files,
        metavar="N",
        help="Files kept per service, the one written included (1 to 100; 1: the file "
        f"starts afresh at rotation) [default: {DEFAULT_LOG_ROTATION.files}]",
    )
    run.add_argument(
        "--runtime",
        default=DaemonOptions.runtime,
        help=f"OCI runtime binary [default: {DaemonOptions.runtime}]",
    )
    run.add_argument(
        "--host-services",
        type=Path,
        help="YAML: readiness rule (path/systemd/command/ready) per external service id.",
    )
    run.add_argument(
        "--config-dir",
        type=Path,
        help="Directory of ExtensionServiceConfig YAML documents, watched for changes.",
    )
    run.add_argument(
        "--console",
        choices=[kind.value for kind in ConsoleKind],
        default=ConsoleKind.STDOUT.value,
        help="Where logToConsole services also write their lines [default: stdout]",
    )
    run.add_argument(
        "--log-target",
        choices=[target.value for target in LogTarget],
        default=LogTarget.AUTO.value,
        help="Where each service's lines are stored: the --log-dir files, journald (native "
        "protocol, SYSLOG_IDENTIFIER=ext-<name>) or both; auto = both when a systemd unit "
        "runs the executor and journald listens, else files [default: auto]",
    )
    run.add_argument(
        "--journal-socket",
        type=Path,
        default=DaemonOptions.journal_socket,
        metavar="PATH",
        help="journald's native socket [default: /run/systemd/journal/socket]",
    )
    timing: list[tuple[str, float | None, str]] = [
        ("--restart-interval", DEFAULT_RESTART_INTERVAL, "Wait between two runs of a "
         "restarting service (Talos's)."),
        ("--restart-backoff-max", None, "Double the interval after each consecutive failure, "
         "up to this."),
        ("--stop-timeout", DEFAULT_STOP_TIMEOUT, "Grace period between SIGTERM and SIGKILL "
         "(Talos's)."),
        ("--check-interval", DEFAULT_CHECK_INTERVAL, "How often host conditions (paths, "
         "network, time) are re-checked."),
        ("--runtime-timeout", RUNC_COMMAND_TIMEOUT, "Each runtime call (runc create/"
         "start/delete/list) is killed after this."),
    ]  # fmt: skip
    for flag, default, help_text in timing:
        shown = f" [default: {exact_duration(default)}]" if default is not None else ""
        run.add_argument(
            flag,
            type=duration,
            default=default,
            metavar="DURATION",
            help=help_text + shown,
        )
    run.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="Keep the metrics in this file, rewritten on change (node_exporter's textfile "
        "collector reads *.prom files).",
    )
    run.add_argument(
        "--metrics-listen",
        type=listen_address,
        metavar="ADDR:PORT",
        help="Serve GET /metrics over HTTP on this address (e.g. 127.0.0.1:9477) [default: off]",
    )
    run.add_argument(
        "--cgroup-parent",
        type=cgroup_parent,
        default=DaemonOptions.cgroup_parent,
        metavar="auto|none|PATH",
        help="Where the containers' cgroups go: auto = inside this executor's systemd unit "
        "when systemd runs it, else as compiled (/system/extensions/<name>); none = as "
        "compiled; PATH = under that cgroup [default: auto]",
    )
    run.add_argument(
        "--no-overlay",
        action="store_true",
        help="Run on the rootfs itself, without the ephemeral overlay (development only).",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="Do not print service events on stderr."
    )
    return run


def options_from(arguments: argparse.Namespace) -> DaemonOptions:
    return DaemonOptions(
        plan=arguments.out,
        state_dir=arguments.state_dir,
        log_dir=arguments.log_dir,
        runtime=arguments.runtime,
        host_services=arguments.host_services,
        config_dir=arguments.config_dir,
        console=ConsoleKind(arguments.console),
        restart_interval=arguments.restart_interval,
        restart_backoff_max=arguments.restart_backoff_max,
        stop_timeout=arguments.stop_timeout,
        check_interval=arguments.check_interval,
        runtime_timeout=arguments.runtime_timeout,
        cgroup_parent=arguments.cgroup_parent,
        log_target=LogTarget(arguments.log_target),
        journal_socket=arguments.journal_socket,
        overlay=not arguments.no_overlay,
        log_rotation=LogRotation(arguments.log_max_size, arguments.log_max_files),
        metrics_file=arguments.metrics_file,
        metrics_listen=arguments.metrics_listen,
    )


def main(argv: Sequence[str]) -> int:
    """`extsvc run ARGV`; the exit code."""
    # First: a SIGTERM/SIGINT/SIGHUP from now on waits for the daemon's handlers.
    mask = signals.block()
    try:
        return _run(argv)
    finally:
        # As it was (a caller in-process, e.g. a test, keeps its signals); a signal that
        # came while the start-up failed is delivered now.
        signals.restore(mask)


def _run(argv: Sequence[str]) -> int:
    try:
        arguments = parser().parse_args(list(argv))
    except SystemExit as usage:  # argparse printed the usage and the problem
        return usage.code if isinstance(usage.code, int) else EXIT_USAGE
    options = options_from(arguments)
    output = EventOutput()
    try:
        from extsvc.executor.daemon import startup

        begun = startup.begin(options, lambda message: output.say(f"extsvc: {message}"))
        # Only now, while the first containers are being created: asyncio and the rest.
        # Without ssl: the executor never speaks TLS (a unix socket, pipes), and asyncio
        # imports it only to offer TLS, guarded for Pythons built without it: ~5 ms of
        # boot's critical path saved by taking that path.
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
        import asyncio

        from extsvc.executor.daemon.main import Reporter, end_leftover_tasks, run_daemon

        reporter = Reporter(
            on_event=event_printer(output, arguments.quiet),
            on_notice=lambda message: output.say(f"extsvc: {message}"),
        )

        async def daemon() -> None:
            try:
                await run_daemon(options, reporter, begun)
            finally:
                # asyncio.run would wait without end for a task that drops its
                # cancellation: a boot daemon that was told to stop exits, bounded.
                stuck = await end_leftover_tasks()
                output.close()
                if stuck:
                    say(f"extsvc: {stuck} task(s) did not end when cancelled: exiting anyway")
                    sys.stdout.flush()
                    os._exit(0)

        asyncio.run(daemon())
    except ExecutorError as error:
        say(f"extsvc: error: {error}")
        return error.exit_code
    return 0


def say(text: str) -> None:
    """One line on stderr. Its terminal may be gone (an SSH session closed: SIGHUP, which
    reloads, then EIO or EPIPE on every write): the daemon carries on without it."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


class EventOutput:
    """The daemon's events and notices on stderr, which nobody may be reading (a full
    pipe): written without blocking (executor.logs.sinks), dropped and counted when full.
    Before the event loop runs (start-up), a plain write."""

    def __init__(self) -> None:
        self._writer: Any = None

    def say(self, text: str) -> None:
        if "asyncio" not in sys.modules:
            say(text)
            return
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            say(text)
            return
        if self._writer is None:
            from extsvc.executor.logs.sinks import NonBlockingWriter

            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            self._writer = NonBlockingWriter(2, "event output")
        self._writer.write(f"{text}\n".encode(errors="replace"))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def event_printer(output: EventOutput, quiet: bool) -> Callable[[str, Any], None] | None:
    if quiet:
        return None

    def on_event(service_id: str, event: Any) -> None:
        output.say(f"{service_id} [{event.state.value}]: {event.message}")

    return on_event
