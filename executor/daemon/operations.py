"""What each control operation does: ``services``/``service`` answer at once, ``start``,
``stop``, ``restart`` wait for the service, ``reload`` for the new plan, ``logs`` streams,
``metrics`` renders (executor.daemon.control has the protocol and the server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from extsvc.compiler.format.durations import format_duration
from extsvc.executor.daemon.client import DEFAULT_SETTLE, DEFAULT_START_TIMEOUT
from extsvc.executor.daemon.loopstats import LoopStats
from extsvc.executor.daemon.requests import IMMEDIATE_OPS, OPS, seconds
from extsvc.executor.errors import ExecutorError, InvalidInputError
from extsvc.executor.logs.logfile import MARKER, LogRecord, merge, stamp
from extsvc.executor.logs.servicelog import FollowerQueue
from extsvc.executor.logs.sinks import dropped_message
from extsvc.executor.metrics.serve import MetricsSource
from extsvc.executor.service.health import Health
from extsvc.executor.service.runner import ServiceRunner
from extsvc.executor.service.states import Event, ServiceState
from extsvc.executor.supervise.supervisor import Supervisor

Reload = Callable[[], Awaitable[dict[str, Any]]]


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
        timeout = seconds(request.get("timeout"), DEFAULT_START_TIMEOUT)
        settle = seconds(request.get("settle"), DEFAULT_SETTLE)
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
