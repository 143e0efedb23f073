"""The control socket: JSON lines over a Unix socket in the state dir (mode 0600).

One request per connection, one JSON object per line::

    -> {"op": "services"}                         <- {"ok": true, "services": [...], "now": t}
    -> {"op": "service", "id": "ext-x"}           <- {"ok": true, "service": {...}, "now": t}
    -> {"op": "start"|"stop"|"restart", "id": "ext-x"}
                                                  <- {"ok": true, "message": "..."}
    -> {"op": "logs", "id": "ext-x", "tail": N|null, "follow": bool}
                                <- {"line": "..."} ... then {"ok": true, "end": true}
    errors                                        <- {"ok": false, "error": "...", "kind": "..."}

`extsvc service` and `extsvc logs` talk to the daemon only through this socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from extsvc.executor.errors import (
    DaemonUnreachableError,
    EnvironmentMissingError,
    ExecutorError,
    InvalidInputError,
    UnknownServiceError,
)
from extsvc.executor.supervisor import Supervisor

SOCKET_NAME = "control.sock"
MAX_REQUEST_BYTES = 64 * 1024
ERROR_KINDS: dict[str, type[ExecutorError]] = {
    "unknown-service": UnknownServiceError,
    "invalid-request": InvalidInputError,
    "error": ExecutorError,
}


class ControlHandler:
    """Turns requests into supervisor calls; yields the response lines."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    async def handle(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        # psutil and the process tree are for status requests, not the boot path.
        from extsvc.executor import status

        op = request.get("op")
        if op == "services":
            runners = self.supervisor.runners.values()
            yield {"ok": True, "now": time.time(), "services": [status.summary(r) for r in runners]}
        elif op == "service":
            runner = self.supervisor.runner(str(request.get("id")))
            yield {"ok": True, "now": time.time(), "service": status.detail(runner)}
        elif op in ("start", "stop", "restart"):
            yield await self._control(op, str(request.get("id")))
        elif op == "logs":
            async for line in self._logs(request):
                yield line
        else:
            raise InvalidInputError(f"unknown control operation {op!r}")

    async def _control(self, op: str, service_id: str) -> dict[str, Any]:
        runner = self.supervisor.runner(service_id)
        if op == "start":
            started = runner.start()
            message = (
                f"Service {service_id!r} started"
                if started
                else f"Service {service_id!r} is already active"
            )
        elif op == "stop":
            await runner.stop()
            message = f"Service {service_id!r} stopped"
        else:
            await runner.restart()
            message = f"Service {service_id!r} restarted"
        return {"ok": True, "message": message}

    async def _logs(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        log = self.supervisor.runner(str(request.get("id"))).log
        tail = request.get("tail")
        count = tail if isinstance(tail, int) and tail >= 0 else None
        # Subscribe before reading the files, with no await in between: no line is lost or doubled.
        queue = log.follow() if request.get("follow") else None
        try:
            for line in log.tail(count):
                yield {"line": line}
            while queue is not None:
                followed = await queue.get()
                if followed is None:
                    break
                yield {"line": followed}
        finally:
            if queue is not None:
                log.unfollow(queue)
        yield {"ok": True, "end": True}


class ControlServer:
    def __init__(self, path: Path, handler: ControlHandler) -> None:
        self.path = path
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None
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
        self._server = await asyncio.start_unix_server(
            self._serve, sock=listening, limit=MAX_REQUEST_BYTES
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            client.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except (ValueError, asyncio.LimitOverrunError):
            await _send(
                writer, {"ok": False, "error": "invalid request", "kind": "invalid-request"}
            )
            return
        try:
            async for response in self.handler.handle(request):
                await _send(writer, response)
        except ExecutorError as error:
            kind = "unknown-service" if isinstance(error, UnknownServiceError) else "error"
            await _send(writer, {"ok": False, "error": str(error), "kind": kind})


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


class ControlClient:
    """Blocking client for the CLI: a missing daemon is one clear error, not a traceback."""

    def __init__(self, state_dir: Path, timeout: float | None = 60.0) -> None:
        self.path = state_dir / SOCKET_NAME
        self.timeout = timeout

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        for response in self.stream(request):
            return response
        raise DaemonUnreachableError(f"the daemon on {self.path} closed the connection")

    def stream(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(self.timeout)
        try:
            connection.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            raise DaemonUnreachableError(
                f"no extsvc daemon is listening on {self.path} "
                "(start one with `extsvc run OUT`, or pass its --state-dir)"
            ) from None
        except PermissionError:
            connection.close()
            raise EnvironmentMissingError(
                f"permission denied on {self.path} (the control socket is root's: run as root)"
            ) from None
        with connection, connection.makefile("rb") as lines:
            connection.sendall(json.dumps(request).encode() + b"\n")
            for raw in lines:
                response = json.loads(raw)
                if response.get("ok") is False:
                    error_type = ERROR_KINDS.get(response.get("kind", "error"), ExecutorError)
                    raise error_type(response.get("error", "request failed"))
                yield response
