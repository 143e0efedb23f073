"""Service lines read back from journald, for `extsvc logs` of an executor that keeps none
in files (``run --log-target journald``).

The lines were sent with the fields executor.logs.journal writes (EXTSVC_SERVICE,
EXTSVC_STREAM, MESSAGE); `journalctl -o json` gives them back with their time, so
each becomes the same LogRecord a log file gives and prints the same way: where a
line was kept does not change what `extsvc logs` shows. journalctl does the
selection (``-n``, ``--since``, ``--until``, ``-f``) on its indexes and interleaves
the services by time, as the files' reader does by merging.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from extsvc.executor.errors import EnvironmentMissingError, ExecutorError
from extsvc.executor.logs.logfile import OUTPUT, LogRecord, stamp
from extsvc.executor.process.environment import CHILD_ENVIRONMENT, CHILD_PATH

JOURNALCTL = "journalctl"
SERVICE_FIELD = "EXTSVC_SERVICE"


def _journalctl() -> str:
    # The environment every child of extsvc gets (PATH only): journalctl's JSON output
    # depends on no locale, TZ or pager.
    found = shutil.which(JOURNALCTL, path=CHILD_PATH)
    if found is None:
        raise EnvironmentMissingError(
            "the executor keeps its service lines in journald, and journalctl is not on PATH"
        )
    return found


def journal_services() -> list[str]:
    """Every service id journald holds lines of (``journalctl -F EXTSVC_SERVICE``)."""
    listed = subprocess.run(
        [_journalctl(), "-F", SERVICE_FIELD],
        capture_output=True, text=True, env=CHILD_ENVIRONMENT, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        raise ExecutorError(f"journalctl -F {SERVICE_FIELD}: {_last_line(listed.stderr)}")
    return sorted(set(listed.stdout.split()))


def journalctl_argv(
    services: list[str], count: int | None, since: str, until: str, follow: bool
) -> list[str]:
    """The journalctl command for these services' lines (matches on one field are OR'ed)."""
    argv = [_journalctl(), "--no-pager", "--quiet", "--output=json", "--all"]
    if count is not None:
        argv.append(f"--lines={count}")
    if since:
        argv.append(f"--since=@{_epoch(since)}")
    if until:
        argv.append(f"--until=@{_epoch(until)}")
    if follow:
        argv.append("--follow")
    argv.extend(f"{SERVICE_FIELD}={service}" for service in services)
    return argv


def journal_records(
    services: list[str], count: int | None, since: str, until: str = "", follow: bool = False
) -> Iterator[LogRecord]:
    """The lines of ``services`` as journald keeps them, oldest first; following, the
    new ones as they arrive, until journalctl ends (or the caller stops reading)."""
    if not services:
        return
    argv = journalctl_argv(services, count, since, until, follow)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENVIRONMENT
    ) as journalctl:
        assert journalctl.stdout is not None and journalctl.stderr is not None
        try:
            for line in journalctl.stdout:
                if line.startswith(b"{"):
                    yield entry_record(json.loads(line))
        finally:
            if journalctl.poll() is None:
                journalctl.terminate()
        error = journalctl.stderr.read().decode(errors="replace")
        if journalctl.wait() not in (0, -15) and error.strip():
            raise ExecutorError(f"journalctl: {_last_line(error)}")


def entry_record(entry: dict[str, Any]) -> LogRecord:
    """One journal entry (journalctl's JSON) as the record a log file would hold."""
    micros = int(entry.get("__REALTIME_TIMESTAMP", 0))
    return LogRecord(
        stamp(micros / 1_000_000) if micros else "",
        _text(entry.get("EXTSVC_STREAM")) or OUTPUT,
        _text(entry.get("MESSAGE")),
        _text(entry.get(SERVICE_FIELD)),
    )


def _text(value: object) -> str:
    """A field's value: journalctl writes one that is not UTF-8 as a list of byte
    values, and a field sent twice as a list of values (the first one counts)."""
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return bytes(value).decode(errors="replace")
        return _text(value[0]) if value else ""
    return value if isinstance(value, str) else ""


def _epoch(utc_stamp: str) -> str:
    """A stamp of executor.logs.logfile (RFC 3339, UTC) as systemd.time's ``@SECONDS``."""
    moment = datetime.fromisoformat(utc_stamp.replace("Z", "+00:00"))
    return f"{moment.timestamp():.3f}"


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "failed"
