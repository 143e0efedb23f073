"""The control socket: JSON lines over a Unix socket in the state dir (mode 0600).

One request per connection, one JSON object per line (times are RFC 3339)::

    -> {"op": "services"}              <- {"ok": true, "now": T, "plan": {..}, "services": [..]}
    -> {"op": "service", "id": "ext-x"} <- {"ok": true, "now": T, "plan": {..}, "service": {..}}
    -> {"op": "start"|"restart", "id": "ext-x", "wait": bool, "timeout": s, "settle": s}
                                       <- {"ok": true, "message": ".."} once Running
                                          (or Finished for a one-shot); a failure is an error
    -> {"op": "stop", "id": "ext-x"}   <- {"ok": true, "message": ".."} once stopped
    -> {"op": "reload"}                <- {"ok": true, "message": "..", "restarted": [..], ..}
    -> {"op": "metrics", "openmetrics": bool} <- {"ok": true, "text": ".."} (metrics.families)
    -> {"op": "logs", "id": "ext-x"|null, "tail": N|null, "since": T|"", "follow": bool}
        <- {"time", "service", "stream", "line"} .. then {"ok": true, "end": true, "reason": ".."}
    errors                             <- {"ok": false, "error": "..", "kind": ".."}

`services` and `service` answers carry ``"loop"``: how late the event loop runs
(executor.daemon.loopstats). A request may carry ``"sent"``, the client's CLOCK_MONOTONIC
reading as it sent it: its first answer then carries ``"timing"`` (how long the
request waited before it was read, and how long it took to handle), as durations.

A service id may be given without its ``ext-`` prefix. `extsvc service`,
`extsvc reload` and `extsvc logs -f` talk to the daemon only through this
socket (executor.daemon.client is their side of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from extsvc.compiler.format.ranges import MAX_SECONDS
from extsvc.executor.daemon.client import ERROR_KINDS, SOCKET_NAME, ControlClient
from extsvc.executor.daemon.loopstats import LoopStats
from extsvc.executor.durations import format_duration
from extsvc.executor.errors import (
    ExecutorError,
    InvalidInputError,
    PlanError,
    UnknownServiceError,
)
from extsvc.executor.logs.logfile import MARKER, MAX_LINES, LogRecord, merge, stamp
from extsvc.executor.logs.servicelog import FollowerQueue
from extsvc.executor.logs.sinks import dropped_message
from extsvc.executor.metrics.serve import MetricsSource
from extsvc.executor.service.health import Health
from extsvc.executor.service.runner import ServiceRunner
from extsvc.executor.service.states import Event, ServiceState
from extsvc.executor.supervise.supervisor import Supervisor

__all__ = ["ERROR_KINDS", "SOCKET_NAME", "ControlClient", "ControlHandler", "ControlServer"]

MAX_REQUEST_BYTES = 64 * 1024
# A client that connects and sends no request line within this is answered and closed.
REQUEST_TIMEOUT = 10.0
# Bounds of the request fields (anything outside is refused as an invalid request).
MAX_TAIL = MAX_LINES  # -n beyond it means every line kept
MAX_ID_CHARS = 256
MAX_SINCE_CHARS = 64
DEFAULT_START_TIMEOUT = 30.0
# A task that dies within this much of "Started task" has not really started (a service
# that reads a bad config typically fails within a second or two of its start).
DEFAULT_SETTLE = 3.0
# At shutdown, followers get this long to receive the last lines before being cut.
CLIENT_DRAIN_TIMEOUT = 2.0

Reload = Callable[[], Awaitable[dict[str, Any]]]
# The operations answered (anything else is counted as "unknown": bounded label values).
OPS = frozenset({"services", "service", "start", "stop", "restart", "reload", "logs", "metrics"})
# Answered in the turn of the loop that accepts the connection (ControlServer).
IMMEDIATE_OPS = frozenset({"services", "service"})
# Connections accepted per turn of the loop; the listen backlog (asyncio's default).
ACCEPT_BATCH = 100


class StartFailed(ExecutorError):
    """start/restart did not reach Running (or a successful finish)."""


class ControlHandler:
    """Turns requests into supervisor calls; yields the response lines."""

    def __init__(
        self,
        supervisor: Supervisor,
        reload: Reload | None = None,
        metrics: MetricsSource | None = None,
        loop_stats: LoopStats | None = None,
    ) -> None:
        self.supervisor = supervisor
        self._reload = reload
        self._metrics = metrics
        self._loop_stats = loop_stats

    def _loop(self) -> dict[str, Any]:
        """How late the event loop runs (executor.daemon.loopstats), for status and --debug."""
        return self._loop_stats.summary() if self._loop_stats else {"measured": False}

    def _plan(self) -> dict[str, Any]:
        return {
            "path": str(self.supervisor.plan.path),
            "changedOnDisk": self.supervisor.plan_changed_on_disk(),
        }

    def _count(self, op: Any) -> None:
        if self._metrics is not None:
            self._metrics.counters.count_request(op if op in OPS else "unknown")

    def answer_now(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a request that waits for nothing (``services``, ``service``),
        computed at once; None for the others. Raises ExecutorError (unknown service)."""
        op = request.get("op")
        if op not in IMMEDIATE_OPS:
            return None
        self._count(op)
        # psutil and the process tree are for status requests, not the boot path.
        from extsvc.executor.daemon import status

        answer: dict[str, Any] = {"ok": True, "now": stamp(time.time()), "plan": self._plan()}
        if op == "services":
            answer["services"] = [status.summary(r) for r in self.supervisor.runners.values()]
        else:
            answer["service"] = status.detail(self.supervisor.runner(str(request.get("id"))))
        answer["loop"] = self._loop()
        return answer

    async def handle(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        immediate = self.answer_now(request)
        if immediate is not None:
            yield immediate
            return
        op = request.get("op")
        self._count(op)
        if op in ("start", "stop", "restart"):
            yield await self._control(op, request)
        elif op == "reload":
            if self._reload is None:
                raise InvalidInputError("this executor cannot reload")
            yield {"ok": True, **(await self._reload())}
        elif op == "logs":
            async for line in self._logs(request):
                yield line
        elif op == "metrics":
            if self._metrics is None:
                raise InvalidInputError("this executor keeps no metrics")
            yield {"ok": True, "text": self._metrics.text(request.get("openmetrics") is True)}
        else:
            raise InvalidInputError(f"unknown control operation {op!r}")

    async def _control(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        runner = self.supervisor.runner(str(request.get("id")))
        service_id = runner.id
        if self.supervisor.stopping:
            raise ExecutorError("the executor is stopping all services")
        if op == "stop":
            self.supervisor.held.add(service_id)
            await runner.stop()
            return {"ok": True, "message": f"Service {service_id!r} stopped"}
        self.supervisor.held.discard(service_id)
        wait = request.get("wait", False) is True
        if op == "restart":
            await runner.stop()
            events = self.supervisor.listen(service_id)
            runner.start()
            started = True
        else:
            events = self.supervisor.listen(service_id)
            started = runner.start()
        try:
            if not wait:
                verb = "restarted" if op == "restart" else "started"
                message = f"Service {service_id!r} {verb}" if started else None
                return {
                    "ok": True,
                    "message": message or f"Service {service_id!r} is already active",
                }
            if not started and runner.state is ServiceState.RUNNING:
                return {"ok": True, "message": f"Service {service_id!r} is already Running"}
            return await self._until_started(runner, events, request)
        finally:
            self.supervisor.unlisten(service_id, events)

    async def _until_started(
        self, runner: ServiceRunner, events: asyncio.Queue[Event], request: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait for Running, then ``settle`` more seconds without a failure (with a health
        check: until it is healthy instead), or for a one-shot's success."""
        timeout = _seconds(request.get("timeout"), DEFAULT_START_TIMEOUT)
        settle = _seconds(request.get("settle"), DEFAULT_SETTLE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        running: Event | None = None
        running_until = deadline
        checked = runner.service.policy.health is not None
        last: Event | None = runner.events.last
        while True:
            remaining = (running_until if running else deadline) - loop.time()
            try:
                event = await asyncio.wait_for(events.get(), max(remaining, 0))
            except TimeoutError:
                if running is not None and not checked:
                    return {"ok": True, "message": f"{runner.id}: {running.message}"}
                where = f"; last event: [{last.state.value}] {last.text}" if last else ""
                what = "become healthy" if running is not None else "start"
                raise StartFailed(
                    f"{runner.id} did not {what} within {format_duration(timeout)}{where}"
                ) from None
            last = event
            if running is not None and checked and runner.health is Health.OK:
                return {"ok": True, "message": f"{runner.id}: {running.message}, healthy"}
            if event.failure or event.state in (ServiceState.FAILED, ServiceState.SKIPPED):
                raise StartFailed(f"{runner.id} [{event.state.value}]: {event.text}")
            if event.state is ServiceState.FINISHED:
                if runner.last_succeeded:
                    return {"ok": True, "message": f"{runner.id}: {event.message}"}
                raise StartFailed(f"{runner.id} [{event.state.value}]: {event.text}")
            if event.state is ServiceState.RUNNING and running is None:
                running = event
                running_until = deadline if checked else loop.time() + settle
            elif event.state is ServiceState.STOPPING:
                raise StartFailed(f"{runner.id} was stopped while starting: {event.text}")

    async def _logs(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        requested = request.get("id")
        if requested is None:
            runners = list(self.supervisor.runners.values())
        else:
            runners = [self.supervisor.runner(str(requested))]
        tail = request.get("tail")
        count = tail if isinstance(tail, int) and tail >= 0 else None
        since = str(request.get("since") or "")
        # Subscribe before reading the files, with no await in between: no line lost or doubled.
        queue: FollowerQueue | None = None
        if request.get("follow"):
            queue = FollowerQueue()
            for runner in runners:
                runner.log.follow(queue)
        try:
            kept = merge((r.log.tail(count, since) for r in runners), count)
            for record in kept:
                yield record.to_json()
            ended = 0
            while queue is not None and ended < len(runners):
                followed = await queue.get()
                dropped = queue.take_dropped()
                if dropped:
                    # This client fell more than a buffer behind: it lost lines, not the log.
                    text = dropped_message(dropped, "this client")
                    yield LogRecord(stamp(time.time()), MARKER, text, "").to_json()
                if followed is None:
                    ended += 1
                else:
                    yield followed.to_json()
        finally:
            if queue is not None:
                for runner in runners:
                    runner.log.unfollow(queue)
        reason = "the executor stopped" if self.supervisor.stopping else "the log ended"
        if queue is not None and not self.supervisor.stopping:
            reason = "the service was removed from the plan"
        yield {"ok": True, "end": True, "reason": reason}


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


def _seconds(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and value >= 0 else default


class ControlServer:
    """Accepts on its own (the listening socket is a reader of the loop) so that a status
    request is answered in the very turn of the loop that sees the connection: the
    client sends its request as soon as it is connected, so it is usually there already
    (read with MSG_PEEK; if not, or for any other request, the connection goes the
    asyncio streams way, the request still unread). asyncio's own server needs five or
    six turns from the accept to the request, and under load each turn waits for a CPU:
    a status request waited seconds (docs/reliability.md, the soak)."""

    def __init__(self, path: Path, handler: ControlHandler) -> None:
        self.path = path
        self.handler = handler
        self._listening: socket.socket | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        # Created 0600 from the start: no window in which another user could connect.
        # The umask is process-wide: it is changed around bind() only, never across an
        # await (services being created meanwhile would get 0600 directories).
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listening.bind(str(self.path))
        finally:
            os.umask(previous)
        listening.listen(ACCEPT_BATCH)
        listening.setblocking(False)
        self._listening = listening
        asyncio.get_running_loop().add_reader(listening.fileno(), self._accept_ready)

    def _accept_ready(self) -> None:
        """Every waiting connection: a status request answered now, the others served."""
        assert self._listening is not None
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _ = self._listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of fds (EMFILE): the loop calls again, the backlog waits
            accepted = time.monotonic()
            connection.setblocking(False)
            try:
                if self._answered_at_once(connection, accepted):
                    continue
            except OSError:
                connection.close()
                continue
            except Exception:
                connection.close()  # a bug: the client sees the connection closed
                raise
            self._track(self._serve_socket(connection, accepted))

    def _answered_at_once(self, connection: socket.socket, accepted: float) -> bool:
        """Answer the request already sent on ``connection`` if it waits for nothing;
        False (nothing read) when the connection must be served the streams way."""
        try:
            waiting = connection.recv(MAX_REQUEST_BYTES, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        line, newline, _ = waiting.partition(b"\n")
        if not newline:
            return False
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            return False
        if not isinstance(request, dict) or check_request(request) is not None:
            return False
        if request.get("op") not in IMMEDIATE_OPS:
            return False
        received = time.monotonic()
        connection.recv(len(line) + 1)  # what was peeked, now taken
        try:
            answer = self.handler.answer_now(request)
        except ExecutorError as error:
            answer = _error_answer(error)
        assert answer is not None
        timing = _timing(request, accepted, received)
        if timing is not None:
            timing["handledSeconds"] = round(time.monotonic() - received, 6)
            answer = {**answer, "timing": timing}
        payload = json.dumps(answer).encode() + b"\n"
        try:
            sent = connection.send(payload)
        except BlockingIOError:
            sent = 0
        if sent == len(payload):
            connection.close()
        else:  # more than the socket buffer holds: the rest as the client reads it
            self._track(_send_rest(connection, payload[sent:]))
        return True

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve_socket(self, connection: socket.socket, accepted: float) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(
                sock=connection, limit=MAX_REQUEST_BYTES
            )
        except (OSError, asyncio.CancelledError):
            connection.close()
            return
        await self._serve(reader, writer, accepted)

    async def close(self) -> None:
        """Stop listening; followers get CLIENT_DRAIN_TIMEOUT to receive their last lines."""
        if self._listening is not None:
            asyncio.get_running_loop().remove_reader(self._listening.fileno())
            self._listening.close()
            self._listening = None
        if self._clients:
            await asyncio.wait(set(self._clients), timeout=CLIENT_DRAIN_TIMEOUT)
        for client in list(self._clients):
            client.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        self.path.unlink(missing_ok=True)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, accepted: float
    ) -> None:
        try:
            await self._answer(reader, writer, accepted)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if writer.transport.get_write_buffer_size():
                # A client that does not read (a stuck `logs -f`): closing would wait for
                # the buffer to drain, for ever, and hold up the executor's exit. What it did
                # not read is dropped with the connection.
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLIENT_DRAIN_TIMEOUT)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, accepted: float
    ) -> None:
        problem = None
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            received = time.monotonic()
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            problem = check_request(request)
        except TimeoutError:
            problem = f"no request within {format_duration(REQUEST_TIMEOUT)}"
        except (ValueError, asyncio.LimitOverrunError) as error:
            # readline's ValueError: the line is longer than the stream's limit.
            too_long = "limit" in str(error) or isinstance(error, asyncio.LimitOverrunError)
            problem = (
                f"request longer than {MAX_REQUEST_BYTES // 1024} KiB"
                if too_long
                else "invalid request: not one JSON object on one line"
            )
        except RecursionError:
            problem = "invalid request: nested too deeply"
        if problem is not None:
            await _send(writer, {"ok": False, "error": problem, "kind": "invalid-request"})
            return
        timing = _timing(request, accepted, received)
        if request.get("op") == "logs" and request.get("follow"):
            await _until_client_leaves(self._respond(request, writer), reader)
        else:
            await self._respond(request, writer, timing, received)

    async def _respond(
        self,
        request: dict[str, Any],
        writer: asyncio.StreamWriter,
        timing: dict[str, float] | None = None,
        received: float = 0.0,
    ) -> None:
        try:
            async for response in self.handler.handle(request):
                if timing is not None:
                    # The first answer only: a follower's lines are not timed.
                    handled = round(time.monotonic() - received, 6)
                    response = {**response, "timing": {**timing, "handledSeconds": handled}}
                    timing = None
                await _send(writer, response)
        except ExecutorError as error:
            await _send(writer, _error_answer(error))


def _error_answer(error: ExecutorError) -> dict[str, Any]:
    kind = "error"
    if isinstance(error, UnknownServiceError):
        kind = "unknown-service"
    elif isinstance(error, PlanError):
        kind = "invalid-plan"
    return {"ok": False, "error": str(error), "kind": kind}


def _timing(request: dict[str, Any], accepted: float, received: float) -> dict[str, float] | None:
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


async def _send_rest(connection: socket.socket, rest: bytes) -> None:
    """The end of an answer too long for the socket buffer; dropped with the connection
    if the client does not read it within REQUEST_TIMEOUT (it may be stuck)."""
    loop = asyncio.get_running_loop()
    with connection, contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(loop.sock_sendall(connection, rest), REQUEST_TIMEOUT)


async def _until_client_leaves(work: Awaitable[None], reader: asyncio.StreamReader) -> None:
    """Run ``work`` (a follower) until it ends or the client closes its connection:
    a follower whose client went away is dropped at once, not at the next line."""
    serving = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(_closed_by_client(reader))
    try:
        await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not serving.done():
            serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving


async def _closed_by_client(reader: asyncio.StreamReader) -> None:
    # A follower sends nothing after its request: what it sends is read and ignored.
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()
