"""The runc side of ContainerRuntime: `runc create` + `runc start`, no resident runc.

``runc --root <state>/runc create --bundle <runtime bundle> --pid-file ... ext-<name>``
is given one pipe of ours as stdin-less stdout *and* stderr. A detached runc
passes its stdio straight to the container's process, so the container writes
into that single pipe itself and the log keeps the exact order of its writes
(the price: a line's stream, stdout or stderr, is not known). `runc create`
exits once the init exists, stopped before exec; the init, orphaned, is
re-parented to the executor (a child subreaper) and adopted through a pidfd
(executor.process.reaper): its exit code is the task's (128+N for signal N). `runc
start` then only releases it. No runc process stays while services run; `runc
delete` removes the stopped container at cleanup.

The pipe is read into lines by executor.runtime.output; what runc does not kill
itself (an init left by a create stopped in its middle, a health check's process) is
killed by executor.runtime.kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.compiler.format.plan import ServicePlan
from extsvc.compiler.format.serviceids import service_name
from extsvc.executor.errors import LaunchError
from extsvc.executor.options import RUNC_COMMAND_TIMEOUT
from extsvc.executor.process import reaper
from extsvc.executor.process.helpers import Completed, run_process
from extsvc.executor.runtime import cgroups
from extsvc.executor.runtime.bundles import (
    CreateCall,
    HeadStart,
    begin_create,
    discard_bundle,
    spec_key,
)
from extsvc.executor.runtime.kills import empty_cgroup, kill_when_named
from extsvc.executor.runtime.output import pump_lines, settle
from extsvc.executor.runtime.placement import CgroupPlacement
from extsvc.executor.runtime.protocol import EXEC_KILL_WAIT, Container, ExecResult, OutputSink
from extsvc.executor.runtime.workspace import Workspace


class RuncContainer:
    def __init__(
        self,
        container_id: str,
        init: reaper.Child,
        cgroups_path: str | None,
        output_done: asyncio.Future[None],
    ) -> None:
        self.id = container_id
        self.pid = init.pid
        self._init = init
        self._cgroups_path = cgroups_path
        self._output_done = output_done

    @property
    def exited(self) -> bool:
        return self._init.exited.done()

    def signal(self, signum: int) -> None:
        if self.exited:
            return
        # The init through its pidfd; its descendants as its cgroup lists them.
        self._init.send_signal(signum)
        if self._cgroups_path:
            cgroups.kill(self._cgroups_path, signum, spare=self.pid)

    async def wait(self) -> int | None:
        try:
            code: int | None = await asyncio.shield(self._init.exited)
        except ChildProcessError:
            code = None
        await settle(self._output_done)
        return code


class RuncRuntime:
    def __init__(
        self,
        binary: str,
        workspace: Workspace,
        use_overlay: bool = True,
        command_timeout: float = RUNC_COMMAND_TIMEOUT,
        head_starts: Iterable[HeadStart] = (),
        placement: CgroupPlacement | None = None,
    ) -> None:
        self.binary = binary
        self.workspace = workspace
        self.use_overlay = use_overlay
        # Where the host adaptation put the containers' cgroups: cleanup looks there.
        self.placement = placement or CgroupPlacement()
        # Every runc call is killed after this: a hung runtime fails a start, never the loop.
        self.command_timeout = command_timeout
        # Creates begun before the loop (executor.daemon.startup), owned from now on: their
        # runc exits and their containers' inits are ours to read, nobody else's.
        children = reaper.children()
        self._head_starts: dict[str, tuple[HeadStart, reaper.Child]] = {}
        for head in head_starts:
            children.hold_strays()
            runc = children.adopt_spawned(head.call.pid, head.call.pidfd)
            self._head_starts[head.service.id] = (head, runc)

    async def _call(self, what: str, *args: str, timeout: float | None = None) -> Completed:
        """One bounded runc call; a timeout is a LaunchError saying so (runc is killed)."""
        limit = self.command_timeout if timeout is None else timeout
        done = await run_process(self._runc(*args), timeout=limit)
        if done.timed_out:
            raise LaunchError(_timed_out(f"runc {what}", limit))
        return done

    def _runc(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.workspace.runc_root), *args]

    async def create(
        self, service: ServicePlan, spec: dict[str, Any], on_output: OutputSink
    ) -> RuncContainer:
        children = reaper.children()
        # Until the init is adopted it is a child nobody waits for: no stray reaping.
        with children.holding_strays():
            runc, call = await self._begin_create(service, spec)
            output_done = asyncio.ensure_future(pump_lines(call.output_fd, on_output))
            try:
                code = await asyncio.wait_for(asyncio.shield(runc.exited), self.command_timeout)
            except (TimeoutError, asyncio.CancelledError) as stopped:
                runc.kill_group()
                with contextlib.suppress(ChildProcessError):
                    await asyncio.shield(runc.exited)
                # A created init, if any, is in runc's group: gone too. delete removes the rest.
                await asyncio.shield(self._forget(service, output_done))
                if isinstance(stopped, asyncio.CancelledError):
                    raise
                raise LaunchError(_timed_out("runc create", self.command_timeout)) from None
            init = self._adopt(call.pid_file) if code == 0 else None
        if init is None:
            await settle(output_done)  # runc said why on the pipe: the log's last line
            await self.cleanup(service)
            raise LaunchError(f"runc create exited with code {code} before the task started")
        cgroups_path = spec.get("linux", {}).get("cgroupsPath")
        return RuncContainer(service.id, init, cgroups_path, output_done)

    async def _begin_create(
        self, service: ServicePlan, spec: dict[str, Any]
    ) -> tuple[reaper.Child, CreateCall]:
        """The create begun at start-up for this very spec, or a new one."""
        head = self._head_starts.pop(service.id, None)
        if head is not None:
            reaper.children().release_strays()  # the caller holds them now
            if head[0].spec_key == spec_key(spec):
                return head[1], head[0].call
            await self._abandon(*head)  # the spec changed since (a configuration came)
        call = begin_create(self.binary, self.workspace, service, spec, self.use_overlay)
        return reaper.children().adopt_spawned(call.pid, call.pidfd), call

    async def _abandon(self, head: HeadStart, runc: reaper.Child) -> None:
        """A create begun at start-up that will not be used: nothing of it may stay."""
        runc.kill_group()
        with contextlib.suppress(ChildProcessError):
            await asyncio.shield(runc.exited)
        os.close(head.call.output_fd)
        with contextlib.suppress(LaunchError):
            await self.cleanup(head.service)

    async def discard_head_starts(self) -> None:
        """The creates begun at start-up that no service took (a stop came first)."""
        while self._head_starts:
            _, (head, runc) = self._head_starts.popitem()
            reaper.children().release_strays()
            await self._abandon(head, runc)

    async def _forget(self, service: ServicePlan, output_done: asyncio.Future[None]) -> None:
        """After a create that did not finish: nothing of it may stay."""
        with contextlib.suppress(LaunchError):
            await self.cleanup(service)
        await settle(output_done)

    @staticmethod
    def _adopt(pid_file: os.PathLike[str]) -> reaper.Child | None:
        try:
            with open(pid_file) as file:
                pid = int(file.read().strip())
            return reaper.children().adopt(pid)
        except (OSError, ValueError):
            return None

    async def start(self, container: Container) -> None:
        started = await self._call("start", "start", container.id)
        if started.returncode != 0:
            reason = f": {started.last_line}" if started.last_line else ""
            raise LaunchError(f"runc start exited with code {started.returncode}{reason}")

    async def exec(
        self,
        container: Container,
        argv: Sequence[str],
        timeout: float,
        process: dict[str, Any] | None = None,
    ) -> ExecResult:
        # What `runc exec` starts has a session of its own (runc init calls setsid):
        # killing runc exec at the timeout would leave it running, re-parented inside
        # the container, one more per interval for a check that hangs. Its PID file names
        # it; runc writes that only once it started, which a loaded host can take longer
        # than the check's timeout: so at the timeout the check's process is found (the
        # PID file, watched) and killed first, then runc exec ends with it.
        bundle = self.workspace.bundle_dir(service_name(container.id))
        pid_file = bundle / "exec.pid"
        pid_file.unlink(missing_ok=True)
        if process is None:
            how = [container.id, *argv]
        else:
            # runc exec --user and --cap only add to the container's process; a whole
            # process.json replaces it (its own user, its own capability sets).
            process_file = bundle / "exec-process.json"
            process_file.write_text(json.dumps(process))
            how = ["--process", str(process_file), container.id]

        async def kill_the_check(runc_exec: reaper.Child) -> None:
            await kill_when_named(pid_file, runc_exec, EXEC_KILL_WAIT)

        done = await run_process(
            self._runc("exec", "--pid-file", str(pid_file), *how),
            timeout=timeout,
            before_kill=kill_the_check,
        )
        return ExecResult(done.returncode, done.output)

    async def cleanup(self, service: ServicePlan) -> None:
        hung: LaunchError | None = None
        compiled = service.spec.get("linux", {}).get("cgroupsPath")
        cgroups_path = self.placement.place(compiled) if compiled else None
        # A created or stopped container stays until deleted (`--force` kills what is left).
        if (self.workspace.runc_root / service.id).exists():
            try:
                await self.remove_container(service.id)
            except LaunchError as error:
                hung = error  # runc could not kill what is left: its cgroup says what that is
        if cgroups_path:
            # What runc does not know of: a create stopped in its middle (runc killed
            # before it wrote its state, a directory `runc delete` then only removes) leaves
            # its init in the cgroup, in a session of its own (not killed with runc's
            # group), ending or ended but not reaped: the cgroup cannot be removed until
            # it is gone.
            left = await empty_cgroup(cgroups_path, self.command_timeout)
            if left and hung is None:
                hung = LaunchError(
                    f"processes {sorted(left)} of cgroup {cgroups_path} did not end within "
                    f"{format_duration(self.command_timeout)} of SIGKILL"
                )
        discard_bundle(self.workspace, service, cgroups_path)
        if hung is not None:
            raise hung

    async def remove_container(self, container_id: str) -> None:
        """`runc delete --force`: kills what is left and removes runc's state and cgroup."""
        await self._call("delete", "delete", "--force", container_id)

    async def list_containers(self) -> list[dict[str, Any]]:
        """runc's containers; without even a state entry, no `runc list` is spawned."""
        try:
            if not any(self.workspace.runc_root.iterdir()):
                return []
        except OSError:
            return []
        try:
            listed = await self._call("list", "list", "--format", "json")
        except LaunchError:
            return []  # a hung runtime: the services' own starts will say so
        if listed.returncode != 0:
            return []
        with contextlib.suppress(json.JSONDecodeError):
            containers = json.loads(listed.output or "null")
            if isinstance(containers, list):
                return [c for c in containers if isinstance(c, dict)]
        return []


def _timed_out(command: str, limit: float) -> str:
    return (
        f"{command} did not finish within {format_duration(limit)} "
        "(the runtime hangs; killed it, see --runtime-timeout)"
    )
