"""`extsvc logs`: the kept lines of one service or of all, merged by time, from the log
files or journald; `-f` follows through the running daemon."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from extsvc.compiler.format.exitcodes import permission_denied
from extsvc.executor.cli.shared import (
    control_client,
    log_dir_option,
    output_option,
    reported_errors,
    state_dir_option,
)
from extsvc.executor.daemon.client import ConnectionLost, read_run_info
from extsvc.executor.errors import (
    DaemonUnreachableError,
    EnvironmentMissingError,
    InvalidInputError,
    UsageError,
)
from extsvc.executor.locations import DEFAULT_LOG_DIR
from extsvc.executor.logs import logfile
from extsvc.executor.service.ids import resolve_id


def _log_dir(state_dir: Path, log_dir: Path | None) -> Path:
    """--log-dir / $EXTSVC_LOG_DIR, else the one the daemon of --state-dir recorded."""
    if log_dir is not None:
        return log_dir
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
                # Only here (and in _journal_services): the journald reader brings
                # subprocess, which reading the log files does without.
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
    return read_run_info(state_dir).get("logTarget") == "journald"


def _journal_services(service_id: str | None) -> list[str]:
    """The services journald holds lines of (``service_id`` only, if given)."""
    from extsvc.executor.logs.journalread import journal_services

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
    per_service = (
        logfile.read_service(logfile.service_files(directory, s), s, count, since, until)
        for s in services
    )
    return logfile.merge(per_service, count)


def _logged_services(directory: Path, service_id: str | None) -> list[str]:
    """The services with logs in ``directory`` (``service_id`` only, if given): an error
    when there is no such directory, as a mistyped --log-dir must not look like no logs."""
    try:
        if not directory.is_dir():
            what = "not a directory" if directory.exists() else "no such directory"
            raise InvalidInputError(
                f"no logs at {directory}: {what} (pass --log-dir, or the --state-dir of the "
                "daemon whose logs to read)"
            )
        known = logfile.services_in(directory)
    except PermissionError as error:
        # Worded as every command words it (extsvc.cli).
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
    request = {"op": "logs", "id": services[0] if service_id else None, "tail": count}
    request.update(since=since, follow=True)
    stream = control_client(state_dir, None).stream(request)
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
