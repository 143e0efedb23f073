"""The daemon's metrics and where they go (executor.metrics.serve): the control socket
always, the file (``--metrics-file``) and the HTTP endpoint (``--metrics-listen``) when
asked for. What changes them: every service event, a sink's drop report, a reload,
the loop's lateness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from extsvc.executor.metrics.families import SinkDrops
from extsvc.executor.metrics.serve import MetricsFile, MetricsHttpServer, MetricsSource
from extsvc.executor.options import DaemonOptions
from extsvc.executor.service.states import Event

if TYPE_CHECKING:
    from extsvc.executor.supervise.supervisor import Supervisor


class DropCounting(Protocol):
    @property
    def dropped_total(self) -> int: ...


class Metrics:
    """The daemon's metrics and where they go (executor.metrics.serve): the control
    socket always, the file and the HTTP endpoint when asked for."""

    def __init__(self, options: DaemonOptions, notice: Callable[[str], None]) -> None:
        from extsvc import __version__
        from extsvc.executor.metrics.families import ExecutorCounters

        self._options = options
        self._notice = notice
        self.counters = ExecutorCounters(__version__, time.time())
        self.source: MetricsSource | None = None
        self._file: MetricsFile | None = None
        self._http: MetricsHttpServer | None = None
        # The shared sinks whose drops are counted, by name (console: stdout or kmsg).
        self.sinks: dict[str, DropCounting] = {}

    def serve(self, supervisor: Supervisor) -> None:
        self.counters.plan_digest = supervisor.plan_digest or ""
        self.source = MetricsSource(
            self.counters,
            lambda: list(supervisor.runners.values()),
            lambda: [SinkDrops(name, sink.dropped_total) for name, sink in self.sinks.items()],
        )
        if self._options.metrics_file is not None:
            self._file = MetricsFile(self._options.metrics_file, self.source, self._notice)
            self._file.write()

    def note_loop_lag(self, late: float) -> None:
        # extsvc_event_loop_lag_seconds: the lateness of the last timer the loop ran.
        self.counters.loop_lag = late

    def observing(
        self, on_event: Callable[[str, Event], None] | None
    ) -> Callable[[str, Event], None]:
        def observe(service_id: str, event: Event) -> None:
            if on_event is not None:
                on_event(service_id, event)
            self.changed()

        return observe

    def observing_notice(self, message: str) -> None:
        """A sink's drop report: said, and its count changed (the file shows it)."""
        self._notice(message)
        self.changed()

    def changed(self) -> None:
        if self._file is not None:
            self._file.changed()

    async def listen(self) -> None:
        if self._options.metrics_listen is None or self.source is None:
            return
        host, port = self._options.metrics_listen
        server = MetricsHttpServer(host, port, self.source)
        try:
            await server.start()
        except OSError as error:
            # Monitoring must not hold up the boot: the services run, and this is said.
            self._notice(
                f"cannot serve metrics on {host}:{port}: {error.strerror}; not serving them"
            )
            return
        self._http = server
        self._notice(f"serving metrics on http://{host}:{server.bound_port}/metrics")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._file is not None:
            self._file.close()
