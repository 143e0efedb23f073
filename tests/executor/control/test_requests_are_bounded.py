"""The control socket refuses what is out of range, answers hostile requests with an error, never a
traceback, and times out a silent client."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from extsvc.executor.daemon.control import MAX_TAIL, ControlClient, check_request
from tests.executor.world import with_server


def raw_exchange(path: Path, payload: bytes, half_close: bool = True) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(str(path))
        try:
            connection.sendall(payload)
            if half_close:
                connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        answer = connection.makefile("rb").readline()
    return json.loads(answer)  # type: ignore[no-any-return]


SECONDS_RANGE = "must be a number of seconds from 0 to 604800"


ID_RANGE = '"id" must be a service name (at most 256 characters)'


TAIL_RANGE = '"tail" must be null or a whole number from 0 to 10,000,000'


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        ({"op": "logs", "id": "ext-a", "tail": 10**30}, TAIL_RANGE),
        ({"op": "logs", "id": "ext-a", "tail": -5}, TAIL_RANGE),
        ({"op": "logs", "id": "ext-a", "tail": True}, TAIL_RANGE),
        ({"op": "logs", "id": "ext-a", "tail": 1.5}, TAIL_RANGE),
        ({"op": "logs", "id": ["ext-a"]}, ID_RANGE),
        ({"op": "logs", "id": "x" * 300}, ID_RANGE),
        ({"op": 7}, '"op" must be a string'),
        ({"op": "logs", "id": "ext-a", "follow": "yes"}, '"follow" must be true or false'),
        ({"op": "start", "id": "ext-a", "timeout": 1e308}, f'"timeout" {SECONDS_RANGE}'),
        ({"op": "start", "id": "ext-a", "settle": -1}, f'"settle" {SECONDS_RANGE}'),
        ({"op": "logs", "id": "ext-a", "since": 5}, '"since" must be an RFC 3339 time'),
    ],
)
def test_request_fields_are_range_checked(request_: dict[str, Any], problem: str) -> None:
    assert check_request(request_) == problem


def test_in_range_requests_pass() -> None:
    assert check_request({"op": "logs", "id": "ext-a", "tail": MAX_TAIL, "follow": True}) is None
    assert (
        check_request({"op": "start", "id": "a", "wait": True, "timeout": 30, "settle": 1.0})
        is None
    )


def test_hostile_requests_get_an_error_not_a_traceback(tmp_path: Path) -> None:
    def body(client: ControlClient) -> list[dict[str, Any]]:
        return [
            raw_exchange(
                client.path, b'{"op": "logs", "id": "ext-a", "tail": 1' + b"0" * 30 + b"}\n"
            ),
            raw_exchange(client.path, b"{" + b" " * 10 * 1024 * 1024 + b"}\n"),
            raw_exchange(client.path, b"[" * 50_000 + b"\n"),
            raw_exchange(client.path, b"not json\n"),
            raw_exchange(client.path, b'{"op": "services"}\n'),
        ]

    answers = asyncio.run(with_server(tmp_path, body))
    assert [a["ok"] for a in answers] == [False, False, False, False, True]
    assert answers[0] == {"ok": False, "error": TAIL_RANGE, "kind": "invalid-request"}
    assert answers[1]["error"] == "request longer than 64 KiB"
    assert answers[2]["error"] == "invalid request: nested too deeply"


def test_a_silent_client_is_timed_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extsvc.executor.daemon import control

    monkeypatch.setattr(control, "REQUEST_TIMEOUT", 0.2)

    def body(client: ControlClient) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(30)
            connection.connect(str(client.path))
            return json.loads(connection.makefile("rb").readline())  # type: ignore[no-any-return]

    answer = asyncio.run(with_server(tmp_path, body))
    assert answer == {"ok": False, "error": "no request within 200ms", "kind": "invalid-request"}
