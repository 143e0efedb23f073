"""A control request, before any operation runs (executor.daemon.control has the
protocol): the bounds of its fields, how they are checked, and what every answer may
carry (an error's kind, the request's timing). Plain functions: no asyncio."""

from __future__ import annotations

from typing import Any

from extsvc.compiler.format.ranges import MAX_SECONDS
from extsvc.executor.errors import ExecutorError, PlanError, UnknownServiceError
from extsvc.executor.logs.logfile import MAX_LINES

MAX_REQUEST_BYTES = 64 * 1024
# A client that connects and sends no request line within this is answered and closed.
REQUEST_TIMEOUT = 10.0
# Bounds of the request fields (anything outside is refused as an invalid request).
MAX_TAIL = MAX_LINES  # -n beyond it means every line kept
MAX_ID_CHARS = 256
MAX_SINCE_CHARS = 64
# The operations answered (anything else is counted as "unknown": bounded label values).
OPS = frozenset({"services", "service", "start", "stop", "restart", "reload", "logs", "metrics"})
# Answered in the turn of the loop that accepts the connection (ControlServer).
IMMEDIATE_OPS = frozenset({"services", "service"})


def check_request(request: dict[str, Any]) -> str | None:
    """What is wrong with the request's fields (types and ranges), or None."""
    if not isinstance(request.get("op"), str):
        return '"op" must be a string'
    service_id = request.get("id")
    if service_id is not None and not (
        isinstance(service_id, str) and 0 < len(service_id) <= MAX_ID_CHARS
    ):
        return f'"id" must be a service name (at most {MAX_ID_CHARS} characters)'
    tail = request.get("tail")
    if tail is not None and not (_is_int(tail) and 0 <= tail <= MAX_TAIL):
        return f'"tail" must be null or a whole number from 0 to {MAX_TAIL:,}'
    since = request.get("since")
    if since is not None and not (isinstance(since, str) and len(since) <= MAX_SINCE_CHARS):
        return '"since" must be an RFC 3339 time'
    for flag in ("follow", "wait", "openmetrics"):
        if request.get(flag) is not None and not isinstance(request.get(flag), bool):
            return f'"{flag}" must be true or false'
    sent = request.get("sent")
    if sent is not None and not (isinstance(sent, int | float) and not isinstance(sent, bool)):
        return '"sent" must be the CLOCK_MONOTONIC seconds at which the request was sent'
    for field in ("timeout", "settle"):
        value = request.get(field)
        if value is not None and not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 <= value <= MAX_SECONDS
        ):
            return f'"{field}" must be a number of seconds from 0 to {MAX_SECONDS:g}'
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seconds(value: Any, default: float) -> float:
    """A checked ``timeout``/``settle`` field, or ``default`` when it is not given."""
    return float(value) if isinstance(value, int | float) and value >= 0 else default


def error_answer(error: ExecutorError) -> dict[str, Any]:
    kind = "error"
    if isinstance(error, UnknownServiceError):
        kind = "unknown-service"
    elif isinstance(error, PlanError):
        kind = "invalid-plan"
    return {"ok": False, "error": str(error), "kind": kind}


def request_timing(
    request: dict[str, Any], accepted: float, received: float
) -> dict[str, float] | None:
    """Where a request that says when it was sent (``sent``) waited, in seconds."""
    sent = request.get("sent")
    if not isinstance(sent, int | float):
        return None
    # The client's CLOCK_MONOTONIC reading: the same clock here (a Unix socket is this
    # host, this boot). Only durations go back.
    return {
        "queuedSeconds": round(received - sent, 6),
        "acceptedToReadSeconds": round(received - accepted, 6),
    }
