"""The runc side of ContainerRuntime: `runc create` + `runc start`, output pumped line by line.

Why create/start and not `runc run`: `runc create --pid-file` tells us the
container's PID before it runs (Talos's "Started task ext-x (PID n)"), and as a
child subreaper we inherit the init when `runc create` exits, so its exit code
comes from a pidfd and waitpid (no runc process stays alive per service, as
with containerd's shim). stdout and stderr share one pipe, so the log keeps the
order in which the service wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any

import psutil

from executor import cgroups
from executor.errors import LaunchError
from executor.plan import ServicePlan
from executor.processes import run_process
from executor.reaper import Reaper
from executor.runtime import OutputSink
from executor.workspace import Workspace

MAX_LINE_BYTES = 64 * 1024
# After the init exits, its pipe closes as soon as the last container process is gone.
OUTPUT_DRAIN_TIMEOUT = 2.0
RUNC_COMMAND_TIMEOUT = 30.0


class RuncContainer:
    def __init__(
        self,
        container_id: str,
        pid: int,
        cgroups_path: str | None,
        exited: asyncio.Future[int | None],
        output_done: asyncio.Task[None],
        reaper: Reaper | None,
    ) -> None:
        self.id = container_id
        self.pid = pid
        self._cgroups_path = cgroups_path
        self._exited = exited
        self._output_done = output_done
        self._reaper = reaper

    def process_ids(self) -> set[int]:
        """The init, its descendants (psutil), and whatever else is in its cgroup."""
        pids = {self.pid}
        with contextlib.suppress(psutil.Error):
            pids.update(child.pid for child in psutil.Process(self.pid).children(recursive=True))
        if self._cgroups_path:
            pids.update(cgroups.processes(self._cgroups_path))
        return pids

    def signal(self, signum: int) -> None:
        if self._exited.done():
            return
        for pid in self.process_ids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    async def wait(self) -> int | None:
        code = await asyncio.shield(self._exited)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._output_done), OUTPUT_DRAIN_TIMEOUT)
        if self._reaper is not None:
            self._reaper.untrack(self.pid)
        return code


class RuncRuntime:
    def __init__(
        self,
        binary: str,
        workspace: Workspace,
        use_overlay: bool = True,
        reaper: Reaper | None = None,
    ) -> None:
        self.binary = binary
        self.workspace = workspace
        self.use_overlay = use_overlay
        self.reaper = reaper

    def _runc(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.workspace.runc_root), *args]

    async def launch(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> RuncContainer:
        runtime_spec = dict(spec)
        root = dict(runtime_spec.get("root", {}))
        lower = root.get("path", service.rootfs)
        for source in service.mount_sources:
            try:
                os.makedirs(source, mode=0o700, exist_ok=True)
            except OSError as error:
                raise LaunchError(
                    f"cannot create mount source {source}: {error.strerror}"
                ) from None
        if self.use_overlay:
            root["path"] = str(self.workspace.mount_rootfs(service.name, lower))
        runtime_spec["root"] = root
        bundle = self.workspace.write_runtime_config(service.name, runtime_spec)
        pid_file = bundle / "init.pid"
        pid_file.unlink(missing_ok=True)

        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        output_done = asyncio.ensure_future(_pump_lines(read_end, on_output))
        try:
            create = await asyncio.create_subprocess_exec(
                *self._runc(
                    "create", "--bundle", str(bundle), "--pid-file", str(pid_file), service.id
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
            )
        except OSError as error:
            os.close(write_end)
            await _settle(output_done)
            await self.cleanup(service)
            raise LaunchError(f"cannot run {self.binary}: {error.strerror}") from None
        os.close(write_end)
        code = await create.wait()
        if code != 0:
            # runc printed why on the service's pipe: it is in the log and the last line.
            await _settle(output_done)
            await self.cleanup(service)
            raise LaunchError(f"runc create exited with code {code}")
        pid = int(pid_file.read_text().strip())
        if self.reaper is not None:
            self.reaper.track(pid)
        exited = _watch_exit(pid)
        started = await run_process(self._runc("start", service.id), timeout=RUNC_COMMAND_TIMEOUT)
        container = RuncContainer(
            service.id,
            pid,
            spec.get("linux", {}).get("cgroupsPath"),
            exited,
            output_done,
            self.reaper,
        )
        if started.returncode != 0:
            container.signal(signal.SIGKILL)
            await container.wait()
            await self.cleanup(service)
            raise LaunchError(
                f"runc start exited with code {started.returncode}: {started.last_line}"
            )
        return container

    async def cleanup(self, service: ServicePlan) -> None:
        await self.remove_container(service.id)
        self.workspace.unmount_rootfs(service.name)
        self.workspace.remove_bundle(service.name)
        cgroups_path = service.spec.get("linux", {}).get("cgroupsPath")
        if cgroups_path:
            cgroups.remove(cgroups_path)

    async def remove_container(self, container_id: str) -> None:
        """`runc delete --force`: kills what is left and removes runc's state and cgroup."""
        await run_process(
            self._runc("delete", "--force", container_id), timeout=RUNC_COMMAND_TIMEOUT
        )

    async def list_containers(self) -> list[dict[str, Any]]:
        if not self.workspace.runc_root.exists():
            return []
        listed = await run_process(
            self._runc("list", "--format", "json"), timeout=RUNC_COMMAND_TIMEOUT
        )
        if listed.returncode != 0:
            return []
        with contextlib.suppress(json.JSONDecodeError):
            containers = json.loads(listed.output or "null")
            if isinstance(containers, list):
                return [c for c in containers if isinstance(c, dict)]
        return []


def _watch_exit(pid: int) -> asyncio.Future[int | None]:
    """A future for the exit code of ``pid``, which must be (or become) our child."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int | None] = loop.create_future()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        exited.set_result(_collect(pid))
        return exited

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(_collect(pid))

    loop.add_reader(pidfd, on_exit)
    return exited


def _collect(pid: int) -> int | None:
    try:
        _waited, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None  # not our child: the exit code is lost
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


async def _pump_lines(read_fd: int, on_output: OutputSink) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as partial:
                if partial.partial:
                    on_output(_decode(partial.partial))
                return
            except asyncio.LimitOverrunError as overrun:
                # An over-long line is logged in pieces rather than dropped.
                raw = await reader.readexactly(overrun.consumed)
            on_output(_decode(raw))
    finally:
        transport.close()


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\n").rstrip(b"\r").decode(errors="replace")


async def _settle(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), OUTPUT_DRAIN_TIMEOUT)
