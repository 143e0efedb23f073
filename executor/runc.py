"""The runc side of ContainerRuntime: `runc run` per service, output pumped line by line.

`runc --root <state>/runc run --bundle <runtime bundle> --pid-file ... ext-<name>`
stays our child for the container's lifetime: its exit code is the container's
(128+N for signal N) and it removes the container when it ends. runc writes the
PID file once the container runs, so an inotify watch on it marks "Started task
ext-x (PID n)" without polling. stdout and stderr share one pipe, so the log
keeps the order in which the service wrote, runc's own errors included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

import psutil

from extsvc.compiler.format.plan import ServicePlan
from extsvc.executor import cgroups
from extsvc.executor.errors import LaunchError
from extsvc.executor.inotify import FileWatch
from extsvc.executor.processes import run_process
from extsvc.executor.runtime import OutputSink
from extsvc.executor.workspace import Workspace

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
        runc: asyncio.subprocess.Process,
        output_done: asyncio.Task[None],
    ) -> None:
        self.id = container_id
        self.pid = pid
        self._cgroups_path = cgroups_path
        self._runc = runc
        self._output_done = output_done

    def process_ids(self) -> set[int]:
        """The init, its descendants (psutil), and whatever else is in its cgroup."""
        pids = {self.pid}
        with contextlib.suppress(psutil.Error):
            pids.update(child.pid for child in psutil.Process(self.pid).children(recursive=True))
        if self._cgroups_path:
            pids.update(cgroups.processes(self._cgroups_path))
        pids.discard(self._runc.pid)  # runc itself is not part of the container
        return pids

    def signal(self, signum: int) -> None:
        if self._runc.returncode is not None:
            return
        for pid in self.process_ids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    async def wait(self) -> int | None:
        code = await self._runc.wait()
        await _settle(self._output_done)
        return code


class RuncRuntime:
    def __init__(
        self,
        binary: str,
        workspace: Workspace,
        use_overlay: bool = True,
    ) -> None:
        self.binary = binary
        self.workspace = workspace
        self.use_overlay = use_overlay

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
        pid_written = FileWatch(pid_file)
        try:
            runc = await asyncio.create_subprocess_exec(
                *self._runc(
                    "run", "--bundle", str(bundle), "--pid-file", str(pid_file), service.id
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
            )
        except OSError as error:
            pid_written.close()
            os.close(write_end)
            await _settle(output_done)
            await self.cleanup(service)
            raise LaunchError(f"cannot run {self.binary}: {error.strerror}") from None
        os.close(write_end)
        exited = asyncio.ensure_future(runc.wait())
        first: set[asyncio.Future[Any]] = {pid_written.appeared, exited}
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        pid_written.close()
        # A task that ran and ended at once still has its PID file; no PID file: never started.
        if not pid_file.exists():
            code = await exited
            await _settle(output_done)  # runc said why on the pipe: the log's last line
            await self.cleanup(service)
            raise LaunchError(f"runc run exited with code {code} before the task started")
        pid = int(pid_file.read_text().strip())
        cgroups_path = spec.get("linux", {}).get("cgroupsPath")
        return RuncContainer(service.id, pid, cgroups_path, runc, output_done)

    async def cleanup(self, service: ServicePlan) -> None:
        # `runc run` deletes its container when it ends; only a leftover needs `runc delete`.
        if (self.workspace.runc_root / service.id).exists():
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
