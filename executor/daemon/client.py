"""The blocking side of the control socket, for the CLI (`extsvc service`, `logs`, `reload`).

Kept apart from the server (executor.daemon.control imports the whole supervisor):
a control command imports only this, json and socket, so it starts fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extsvc.compiler.format.exitcodes import EXIT_ENVIRONMENT
from extsvc.executor.errors import (
    DaemonUnreachableError,
    EnvironmentMissingError,
    ExecutorError,
    InvalidInputError,
    PlanError,
    UnknownServiceError,
)

SOCKET_NAME = "control.sock"
# How long a control command waits for an answer, by default.
ANSWER_TIMEOUT = 60.0
# start/restart wait this long for Running, then this long more without a failure (a
# task that dies within a few seconds of "Started task", typically on a bad
# configuration, has not really started): `extsvc service`'s defaults, and the daemon's
# for a request that does not say.
DEFAULT_START_TIMEOUT = 30.0
DEFAULT_SETTLE = 3.0
# What a daemon records in its state dir for the CLI (its log dir, its plan).
RUN_INFO = "run.json"
ERROR_KINDS: dict[str, type[ExecutorError]] = {
    "unknown-service": UnknownServiceError,
    "invalid-request": InvalidInputError,
    "invalid-plan": PlanError,
    "error": ExecutorError,
}


class ConnectionLost(ExecutorError):
    """The daemon closed a stream before its end marker (it was killed, or crashed)."""

    exit_code = EXIT_ENVIRONMENT


class ControlClient:
    """A missing daemon is one clear error, not a traceback."""

    def __init__(self, state_dir: Path, timeout: float | None = ANSWER_TIMEOUT) -> None:
        self.path = state_dir / SOCKET_NAME
        self.timeout = timeout

    def request(
        self, request: dict[str, Any], marks: dict[str, float] | None = None
    ) -> dict[str, Any]:
        for response in self.stream(request, marks):
            return response
        raise DaemonUnreachableError(f"the daemon on {self.path} closed the connection")

    def stream(
        self, request: dict[str, Any], marks: dict[str, float] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The answers to ``request``. With ``marks``, the request says when it was sent
        and ``marks`` gets CLOCK_MONOTONIC readings: connecting, sent, answered (the
        first answer read), for `extsvc service --debug`."""
        import socket  # `extsvc logs` reads files without ever connecting: not imported for it
        import time

        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(self.timeout)
        try:
            if marks is not None:
                marks["connecting"] = time.monotonic()
            connection.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            connection.close()
            raise DaemonUnreachableError(
                f"no extsvc daemon is listening on {self.path} "
                "(start one with `extsvc run OUT`, or pass its --state-dir)"
            ) from None
        except PermissionError:
            connection.close()
            raise EnvironmentMissingError(
                f"permission denied on {self.path}: the control socket is root's, "
                "run this as root (sudo)"
            ) from None
        with connection, connection.makefile("rb") as lines:
            if marks is not None:
                request = {**request, "sent": time.monotonic()}
                marks["sent"] = request["sent"]
            connection.sendall(json.dumps(request).encode() + b"\n")
            for raw in lines:
                if marks is not None and "answered" not in marks:
                    marks["answered"] = time.monotonic()
                response = json.loads(raw)
                if response.get("ok") is False:
                    error_type = ERROR_KINDS.get(response.get("kind", "error"), ExecutorError)
                    raise error_type(response.get("error", "request failed"))
                yield response


def read_run_info(state_dir: Path) -> dict[str, Any]:
    """What the daemon of ``state_dir`` recorded (log dir, plan), or {} when none did."""
    try:
        info = json.loads((state_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
