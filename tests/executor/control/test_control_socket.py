"""The control socket end to end (server over a fake supervisor, the blocking client)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extsvc.cli import cli
from extsvc.executor.daemon.control import SOCKET_NAME, ControlClient, ControlHandler, ControlServer
from extsvc.executor.errors import DaemonUnreachableError, UnknownServiceError
from extsvc.executor.simulate.runtime import ScriptedRuntime
from extsvc.executor.supervise.supervisor import Supervisor, SupervisorSettings
from tests.executor.fakes import make_clock, make_plan, make_service
from tests.executor.world import FULL_HOST, SETTINGS, with_server


def test_socket_is_private_and_lists_services(tmp_path: Path) -> None:
    def body(client: ControlClient) -> Any:
        return client.request({"op": "services"})

    response = asyncio.run(with_server(tmp_path, body))
    states = {s["id"]: s["state"] for s in response["services"]}
    assert states == {"ext-a": "Running", "ext-b": "Finished"}
    assert not (tmp_path / SOCKET_NAME).exists()  # removed at close


def test_a_status_request_is_answered_in_the_turn_that_accepts_it(tmp_path: Path) -> None:
    """The server's accept path answers a request already sent (``services``) before it
    returns to the loop: no task, no further turn (a turn waits for a CPU under load)."""

    async def scenario() -> tuple[dict[str, Any], int]:
        clock = make_clock()
        supervisor = Supervisor(
            make_plan(make_service("a")),
            ScriptedRuntime(clock),
            clock,
            SupervisorSettings(FULL_HOST, SETTINGS, log_dir=tmp_path / "logs"),
        )
        server = ControlServer(tmp_path / SOCKET_NAME, ControlHandler(supervisor))
        await server.start()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / SOCKET_NAME))  # in the backlog: not accepted yet
            client.sendall(b'{"op": "services"}\n')
            server._accept_ready()  # what the loop calls once it sees the listening socket
            answer = client.recv(65536, socket.MSG_DONTWAIT)
            tasks = len(server._clients)
        await server.close()
        await supervisor.shutdown()
        return json.loads(answer), tasks

    answer, tasks = asyncio.run(scenario())
    assert answer["ok"] is True
    assert [s["id"] for s in answer["services"]] == ["ext-a"]
    assert tasks == 0


def test_socket_mode_is_0600(tmp_path: Path) -> None:
    def body(client: ControlClient) -> int:
        return stat.S_IMODE(client.path.stat().st_mode)

    assert asyncio.run(with_server(tmp_path, body)) == 0o600


def test_service_detail_control_and_logs(tmp_path: Path) -> None:
    def body(client: ControlClient) -> tuple[Any, ...]:
        detail = client.request({"op": "service", "id": "ext-a"})["service"]
        stream = client.stream({"op": "logs", "id": "ext-a"})
        lines = [m["line"] for m in stream if m.get("stream") == "output"]
        stopped = client.request({"op": "stop", "id": "ext-a"})
        after = client.request({"op": "service", "id": "ext-a"})["service"]
        return detail, lines, stopped, after

    detail, lines, stopped, after = asyncio.run(with_server(tmp_path, body))
    assert detail["pid"] == 101 and detail["runs"] == 1 and detail["restarts"] == 0
    assert detail["events"][0]["message"] == "Started task ext-a (PID 101) for container ext-a"
    assert lines == ["first", "second"]
    assert stopped["message"] == "Service 'ext-a' stopped"
    assert after["state"] == "Finished" and after["pid"] is None


def test_logs_follow_streams_new_lines(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        holder: list[Supervisor] = []

        def body(client: ControlClient) -> list[str]:
            lines: list[str] = []
            stream = client.stream({"op": "logs", "id": "ext-a", "tail": 1, "follow": True})
            for message in stream:
                lines.append(message["line"])
                if len(lines) == 1:
                    log = holder[0].runners["ext-a"].log
                    loop.call_soon_threadsafe(log.write, "third")
                    loop.call_soon_threadsafe(log.write, "fourth")
                if len(lines) == 3:
                    return lines
            return lines

        return await with_server(tmp_path, body, holder)  # type: ignore[no-any-return]

    assert asyncio.run(scenario()) == ["second", "third", "fourth"]


def test_unknown_service_is_a_typed_error(tmp_path: Path) -> None:
    def body(client: ControlClient) -> None:
        with pytest.raises(UnknownServiceError, match="unknown service 'ext-zzz'"):
            client.request({"op": "service", "id": "ext-zzz"})

    asyncio.run(with_server(tmp_path, body))


def test_missing_daemon_is_one_line_exit_3(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachableError):
        ControlClient(tmp_path).request({"op": "services"})
    for args in (["service"], ["service", "ext-a", "stop"], ["reload"]):
        result = CliRunner().invoke(cli, [*args, "--state-dir", str(tmp_path)])
        assert result.exit_code == 3, result.output
        assert result.output.count("\n") == 1
        assert "no extsvc daemon is listening on" in result.output


def test_logs_without_a_daemon_read_the_files_and_follow_says_it_cannot(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ext-a.log").write_text(
        "2026-01-02T03:04:05.006Z extsvc -- ext-a run 1 started --\n"
        "2026-01-02T03:04:05.120Z output kept on disk\n"
    )
    common = ["--state-dir", str(tmp_path), "--log-dir", str(logs)]
    printed = CliRunner().invoke(cli, ["logs", "a", *common])
    assert printed.exit_code == 0, printed.output
    assert printed.output == "-- ext-a run 1 started --\nkept on disk\n"
    followed = CliRunner().invoke(cli, ["logs", "ext-a", "-f", *common])
    assert followed.exit_code == 3
    assert followed.output.startswith("-- ext-a run 1 started --\nkept on disk\n")
    assert "not following: no extsvc daemon is listening on" in followed.output


def test_bad_duration_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--restart-interval", "5 parsecs"])
    assert result.exit_code == 2
    assert "invalid duration '5 parsecs'" in result.output


def test_run_reports_bad_input_and_missing_runtime_in_one_line(tmp_path: Path) -> None:
    missing_plan = CliRunner().invoke(cli, ["run", str(tmp_path), "--runtime", "true"])
    if os.geteuid() == 0:
        assert missing_plan.exit_code == 1, missing_plan.output
        assert "plan.json: no such file (run `extsvc compile" in missing_plan.output
    else:
        assert missing_plan.exit_code == 3
    assert "Traceback" not in missing_plan.output
    assert missing_plan.output.count("\n") == 1
    no_runtime = CliRunner().invoke(cli, ["run", str(tmp_path), "--runtime", "no-such-runc"])
    assert no_runtime.exit_code == 3
    assert no_runtime.output.count("\n") == 1


def test_state_and_log_dirs_come_from_the_environment(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ext-a.log").write_text("2026-01-02T03:04:05.120Z output from the environment\n")
    env = {"EXTSVC_STATE_DIR": str(tmp_path / "state"), "EXTSVC_LOG_DIR": str(logs)}
    printed = CliRunner().invoke(cli, ["logs", "a"], env=env)
    assert printed.exit_code == 0, printed.output
    assert printed.output == "from the environment\n"
    listed = CliRunner().invoke(cli, ["services"], env=env)
    assert listed.exit_code == 3
    assert f"no extsvc daemon is listening on {tmp_path / 'state' / 'control.sock'}" in (
        listed.output
    )


def test_following_every_service_ends_with_the_reason_when_the_executor_stops(
    tmp_path: Path,
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        holder: list[Supervisor] = []

        def body(client: ControlClient) -> list[dict[str, Any]]:
            received: list[dict[str, Any]] = []
            request = {"op": "logs", "id": None, "tail": None, "follow": True}
            for message in client.stream(request):
                received.append(message)
                if message.get("line") == "second":
                    # The shutdown the daemon does on SIGTERM: services, then the server.
                    loop.call_soon_threadsafe(asyncio.ensure_future, holder[0].shutdown())
            return received

        return await with_server(tmp_path, body, holder)  # type: ignore[no-any-return]

    received = asyncio.run(scenario())
    lines = [(m["service"], m["line"]) for m in received if "line" in m]
    assert ("ext-a", "first") in lines and ("ext-a", "second") in lines
    # The other service, which exited at once, is followed too: its run, then its exit.
    assert [line for service, line in lines if service == "ext-b"] == [
        "-- ext-b run 1 started --",
        "-- exited with code 0 --",
    ]
    # The stopped service's last marker (SIGTERM: 128+15) arrives before the end, which
    # says why.
    assert ("ext-a", "-- stopped, exited with code 143 --") in lines
    assert received[-1] == {"ok": True, "end": True, "reason": "the executor stopped"}
