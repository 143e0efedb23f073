"""`extsvc run`, `extsvc service`, `extsvc logs`: the only executor module that knows click.

Each command turns ExecutorError into one line on stderr and its exit code
(DESIGN §7); nothing below here prints or exits.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from extsvc.executor.daemon.client import ANSWER_TIMEOUT, DEFAULT_SETTLE, DEFAULT_START_TIMEOUT
from extsvc.executor.errors import (
    EnvironmentMissingError,
    ExecutorError,
    InvalidInputError,
    UsageError,
)
from extsvc.executor.locations import DEFAULT_LOG_DIR, DEFAULT_STATE_DIR

STATE_DIR_HELP = "Executor state directory (holds the control socket)."

# readable=False: a denied path is said as every command says it (extsvc.cli).
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(readable=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    envvar="EXTSVC_STATE_DIR",
    help=STATE_DIR_HELP + " [env: EXTSVC_STATE_DIR]",
)


def log_dir_option(
    help_text: str, default: Path | None = DEFAULT_LOG_DIR
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--log-dir",
        type=click.Path(readable=False, path_type=Path),
        default=default,
        show_default=default is not None,
        envvar="EXTSVC_LOG_DIR",
        help=help_text + " [env: EXTSVC_LOG_DIR]",
    )


output_option = click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        # Imported when a duration is written, not for the defaults: the parser and its
        # regular expressions cost a status command a fifth of its start-up.
        from extsvc.compiler.format.quantities import parse_duration

        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@contextmanager
def reported_errors() -> Iterator[None]:
    """One line and the error's exit code instead of a traceback."""
    try:
        yield
    except ExecutorError as error:
        click.echo(f"extsvc: error: {error}", err=True)
        sys.exit(error.exit_code)


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def run_command(arguments: tuple[str, ...]) -> None:
    """Run the compiled plan in OUT until SIGTERM/SIGINT (foreground daemon, as root)."""
    # `extsvc run` is parsed by argparse, without click on boot's path (extsvc.entry
    # goes there directly); this command only lists it and serves click's callers.
    from extsvc.executor.cli.run import main

    sys.exit(main(arguments))


def _client(state_dir: Path, timeout: float | None = ANSWER_TIMEOUT) -> Any:
    from extsvc.executor.daemon.client import ControlClient

    return ControlClient(state_dir, timeout)


def _needs_root(command: str) -> None:
    if os.geteuid() != 0:
        raise EnvironmentMissingError(
            f"extsvc {command} needs root: the executor's control socket and state are "
            "root's (run it with sudo)"
        )


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _print_plan_note(response: dict[str, Any]) -> None:
    from extsvc.executor.cli.servicetext import plan_note

    note = plan_note(response.get("plan"))
    if note is not None:
        click.echo(f"extsvc: {note}", err=True)


@click.command("service")
@click.argument("service_id", required=False)
@click.argument("action", required=False, type=click.Choice(["start", "stop", "restart", "status"]))
@state_dir_option
@output_option
@click.option("--no-wait", is_flag=True, help="start/restart: return once asked, without waiting.")
@click.option(
    "--timeout",
    type=Duration(),
    default=DEFAULT_START_TIMEOUT,
    help="start/restart: how long to wait for Running (or a one-shot's success).  "
    f"[default: {DEFAULT_START_TIMEOUT:g}s]",
)
@click.option(
    "--settle",
    type=Duration(),
    default=DEFAULT_SETTLE,
    help="start/restart: how long it must stay Running to count as started "
    f"(with a health check: until healthy instead).  [default: {DEFAULT_SETTLE:g}s]",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Also print (on stderr) where this command's time went and how late the "
    "executor's event loop runs.",
)
def service_command(
    service_id: str | None,
    action: str | None,
    state_dir: Path,
    output: str,
    no_wait: bool,
    timeout: float,
    settle: float,
    debug: bool,
) -> None:
    """List services, show one (ID or bare name: state, PID, events), or start/stop/restart it.

    start and restart wait until the service is Running (or Finished, for a
    one-shot) and exit 1 with the failure event if it fails or times out.
    """
    with reported_errors():
        _needs_root("service")
        client = _client(state_dir, timeout + settle + 30)
        marks: dict[str, float] | None = {} if debug else None
        if service_id is None:
            response = client.request({"op": "services"}, marks)
            if output == "json":
                _dump(
                    {k: response[k] for k in ("now", "plan", "services", "loop") if k in response}
                )
            else:
                from extsvc.executor.cli import servicetext

                click.echo(servicetext.services_table(response["services"], response["now"]))
            _print_plan_note(response)
        elif action in (None, "status"):
            response = client.request({"op": "service", "id": service_id}, marks)
            if output == "json":
                _dump(response["service"])
            else:
                from extsvc.executor.cli import servicetext

                click.echo(servicetext.service_detail(response["service"], response["now"]))
            _print_plan_note(response)
        else:
            request = {"op": action, "id": service_id, "wait": not no_wait}
            request.update(timeout=timeout, settle=settle)
            response = client.request(request, marks)
            if output == "json":
                click.echo(json.dumps(response))
            else:
                click.echo(response["message"])
        if marks is not None:
            from extsvc.executor.cli import servicetext

            click.echo(servicetext.debug_report(marks, response), err=True)


@click.command("reload")
@state_dir_option
@output_option
def reload_command(state_dir: Path, output: str) -> None:
    """Re-read the running plan (as SIGHUP): restart what changed, start what is new,
    stop what was removed; a plan that fails validation is refused, nothing is touched."""
    with reported_errors():
        _needs_root("reload")
        response = _client(state_dir, None).request({"op": "reload"})
        if output == "json":
            click.echo(json.dumps(response))
        else:
            click.echo(response["message"])


def _log_dir(state_dir: Path, log_dir: Path | None) -> Path:
    """--log-dir / $EXTSVC_LOG_DIR, else the one the daemon of --state-dir recorded."""
    if log_dir is not None:
        return log_dir
    from extsvc.executor.daemon.client import read_run_info

    recorded = read_run_info(state_dir).get("logDir")
    return Path(recorded) if isinstance(recorded, str) else DEFAULT_LOG_DIR


@click.command("logs")
@click.argument("service_id", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (needs the daemon).")
@click.option(
    "-n",
    "--tail",
    "--lines",
    "tail",
    default="all",
    show_default=True,
    metavar="N",
    help="Only the last N lines (as tail -n and journalctl -n); all (or -1): every line kept.",
)
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Only lines from TIME on: a time ago (5m, -5m, 1h ago, -2d), now, today, yesterday, "
    "or a time (2026-01-02T15:04:05Z; '2026-01-02 15:04' is local time).",
)
@click.option(
    "--until",
    default=None,
    metavar="TIME",
    help="Only lines up to TIME (the same forms as --since); not with -f.",
)
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time (RFC 3339).")
@click.option(
    "--source",
    type=click.Choice(["auto", "files", "journald"]),
    default="auto",
    show_default=True,
    help="Where to read: the log files, or journald; auto: journald when the daemon of "
    "--state-dir keeps its lines only there (run --log-target journald), else the files.",
)
@state_dir_option
@log_dir_option(f"Log directory [default: the running daemon's, else {DEFAULT_LOG_DIR}].", None)
@output_option
def logs_command(
    service_id: str | None,
    follow: bool,
    tail: str,
    since: str | None,
    until: str | None,
    timestamps: bool,
    source: str,
    state_dir: Path,
    log_dir: Path | None,
    output: str,
) -> None:
    """Print the logs of SERVICE_ID (ext-NAME or NAME), or of every service merged by
    time, each line prefixed with its service (as journalctl does).

    Read from the log files, so they are there after a crash or a failed boot;
    `-f` follows through the running daemon and says why it ended. An executor that
    keeps its lines only in journald is read through journalctl, shown the same way.
    """
    from extsvc.executor.logs import logfile

    with reported_errors():
        try:
            count = logfile.parse_count(tail)
            lower = logfile.parse_time(since, "--since") if since else ""
            upper = logfile.parse_time(until, "--until") if until else ""
        except ValueError as error:
            raise UsageError(str(error)) from None
        if follow and upper:
            raise UsageError("--until cannot be used with -f: following has no end")
        journald = _reads_journald(source, state_dir, log_dir)
        if journald:
            services = _journal_services(service_id)
            where = "journald"
        else:
            directory = _log_dir(state_dir, log_dir)
            services = _logged_services(directory, service_id)
            where = str(directory)
        prefix = service_id is None
        printed = 0

        def emit(record: logfile.LogRecord) -> None:
            nonlocal printed
            printed += 1
            _emit(record, output, timestamps, prefix)

        try:
            if journald:
                from extsvc.executor.logs.journalread import journal_records

                for record in journal_records(services, count, lower, upper, follow):
                    emit(record)
            elif follow:
                _follow(state_dir, directory, services, service_id, count, lower, emit)
                return
            else:
                for record in _kept(directory, services, count, lower, upper):
                    emit(record)
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:  # `extsvc logs x | head`
            sys.stderr.close()
            return
        if not printed and count != 0:
            # As journalctl's "-- No entries --": an empty answer is said, never silent.
            where += f" for {services[0]}" if service_id else ""
            bounded = " in that time range" if services and (lower or upper) else ""
            what = "log lines" if services else "service logs"
            click.echo(f"extsvc: no {what} in {where}{bounded}", err=True)


def _emit(record: Any, output: str, timestamps: bool, prefix: bool) -> None:
    from extsvc.executor.logs import logfile

    if output == "json":
        click.echo(json.dumps(record.to_json()))
    else:
        click.echo(logfile.format_record(record, timestamps, prefix))


def _reads_journald(source: str, state_dir: Path, log_dir: Path | None) -> bool:
    """``--source``: auto reads journald only for a daemon that keeps no log files, and
    never when a --log-dir is named (those files are what was asked for)."""
    if source != "auto":
        return source == "journald"
    if log_dir is not None:
        return False
    from extsvc.executor.daemon.client import read_run_info

    return read_run_info(state_dir).get("logTarget") == "journald"


def _journal_services(service_id: str | None) -> list[str]:
    """The services journald holds lines of (``service_id`` only, if given)."""
    from extsvc.executor.logs.journalread import journal_services
    from extsvc.executor.service.ids import resolve_id

    known = journal_services()
    if service_id is None:
        return known
    if not known:
        raise InvalidInputError("no service lines in journald (journalctl -F EXTSVC_SERVICE)")
    return [resolve_id(service_id, known)]


def _kept(
    directory: Path, services: list[str], count: int | None, since: str, until: str = ""
) -> list[Any]:
    """The kept records of ``services``, interleaved by time, the last ``count``."""
    from extsvc.executor.logs import logfile

    per_service = (
        logfile.read_service(logfile.service_files(directory, s), s, count, since, until)
        for s in services
    )
    return logfile.merge(per_service, count)


def _logged_services(directory: Path, service_id: str | None) -> list[str]:
    """The services with logs in ``directory`` (``service_id`` only, if given): an error
    when there is no such directory, as a mistyped --log-dir must not look like no logs."""
    from extsvc.executor.logs.logfile import services_in
    from extsvc.executor.service.ids import resolve_id

    try:
        if not directory.is_dir():
            what = "not a directory" if directory.exists() else "no such directory"
            raise InvalidInputError(
                f"no logs at {directory}: {what} (pass --log-dir, or the --state-dir of the "
                "daemon whose logs to read)"
            )
        known = services_in(directory)
    except PermissionError as error:
        # Worded as every command words it (extsvc.cli).
        from extsvc.compiler.format.exitcodes import permission_denied

        raise EnvironmentMissingError(permission_denied("extsvc logs", error)) from None
    if service_id is None:
        return known
    if not known:
        raise InvalidInputError(
            f"no service logs in {directory} (pass --log-dir, or the daemon's --state-dir)"
        )
    return [resolve_id(service_id, known)]


def _follow(
    state_dir: Path,
    directory: Path,
    services: list[str],
    service_id: str | None,
    count: int | None,
    since: str,
    emit: Callable[[Any], None],
) -> None:
    import itertools

    from extsvc.executor.daemon.client import ConnectionLost
    from extsvc.executor.errors import DaemonUnreachableError
    from extsvc.executor.logs import logfile

    request = {"op": "logs", "id": services[0] if service_id else None, "tail": count}
    request.update(since=since, follow=True)
    stream = _client(state_dir, None).stream(request)
    try:
        first = next(stream, None)
    except DaemonUnreachableError as error:
        # Still show what is kept, then say plainly that nothing more will come.
        for record in _kept(directory, services, count, since):
            emit(record)
        raise DaemonUnreachableError(f"not following: {error}") from None
    messages = stream if first is None else itertools.chain([first], stream)
    for message in messages:
        if message.get("end"):
            click.echo(f"extsvc: end of logs: {message.get('reason', 'the log ended')}", err=True)
            return
        record = logfile.LogRecord(
            message["time"] or "", message["stream"], message["line"], message["service"]
        )
        emit(record)
    raise ConnectionLost("end of logs: the connection to the executor was lost (killed?)")
