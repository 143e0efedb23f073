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

Three modules, one per job: this one is the server (its accept path, the streams
way, the drain at shutdown); executor.daemon.requests checks a request's fields and
shapes errors; executor.daemon.operations answers each operation (ControlHandler).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.executor.daemon.client import ERROR_KINDS, SOCKET_NAME, ControlClient
from extsvc.executor.daemon.operations import ControlHandler, StartFailed
from extsvc.executor.daemon.requests import (
    IMMEDIATE_OPS,
    MAX_REQUEST_BYTES,
    MAX_TAIL,
    REQUEST_TIMEOUT,
    check_request,
    error_answer,
    request_timing,
)
from extsvc.executor.errors import ExecutorError

__all__ = [
    "ERROR_KINDS",
    "MAX_TAIL",
    "SOCKET_NAME",
    "ControlClient",
    "ControlHandler",
    "ControlServer",
    "StartFailed",
    "check_request",
]

# At shutdown, followers get this long to receive the last lines before being cut.
CLIENT_DRAIN_TIMEOUT = 2.0
# Connections accepted per turn of the loop; the listen backlog (asyncio's default).
ACCEPT_BATCH = 100


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
            answer = error_answer(error)
        assert answer is not None
        timing = request_timing(request, accepted, received)
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
        timing = request_timing(request, accepted, received)
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
            await _send(writer, error_answer(error))


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
