"""Where the executor's metrics go: a textfile for node_exporter, and `GET /metrics`.

Nothing is computed while nobody asks. The file is rewritten only after something
changed (a state change, a reload, a drop report), at most once per
FILE_MIN_INTERVAL, by one timer armed only while a change is pending: an idle
executor wakes up for neither. The HTTP server renders on each request.

The file follows node_exporter's textfile collector convention: written beside
itself and renamed into place (a scrape never reads half a file), mode 0644 (the
collector runs as its own user), named ``*.prom`` by the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from extsvc.executor.metrics.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    Family,
    render,
)
from extsvc.executor.metrics.families import (
    ExecutorCounters,
    SinkDrops,
    executor_families,
    service_families,
)
from extsvc.executor.service.runner import ServiceRunner

FILE_MIN_INTERVAL = 1.0
# An HTTP request must arrive whole within this, and be no longer than this.
REQUEST_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8 * 1024


class MetricsSource:
    """The daemon's metrics, rendered on demand from its live objects."""

    def __init__(
        self,
        counters: ExecutorCounters,
        runners: Callable[[], Iterable[ServiceRunner]],
        sink_drops: Callable[[], Iterable[SinkDrops]] = lambda: (),
    ) -> None:
        self.counters = counters
        self._runners = runners
        self._sink_drops = sink_drops
        self.up = True

    def families(self, live: bool) -> list[Family]:
        return [
            *executor_families(self.counters, self.up, self._sink_drops()),
            *service_families(self._runners(), live),
        ]

    def text(self, openmetrics: bool = False, live: bool = True) -> str:
        return render(self.families(live), openmetrics)


class MetricsFile:
    """``path`` kept up to date with the metrics, rewritten on change only."""

    def __init__(self, path: Path, source: MetricsSource, on_problem: Callable[[str], None]):
        self.path = path
        self._source = source
        self._on_problem = on_problem
        self._written_at = -FILE_MIN_INTERVAL
        self._timer: asyncio.TimerHandle | None = None
        self._failing = False

    def changed(self) -> None:
        """Something the file shows changed: write it now, or once the interval is over."""
        if self._timer is not None:
            return  # a write is already due, and will show this change too
        loop = asyncio.get_running_loop()
        wait = self._written_at + FILE_MIN_INTERVAL - time.monotonic()
        self._timer = loop.call_later(max(wait, 0.0), self._write_due)

    def _write_due(self) -> None:
        self._timer = None
        self.write()

    def write(self) -> None:
        self._written_at = time.monotonic()
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(descriptor, "w") as stream:
                stream.write(self._source.text(live=False))
            os.chmod(temporary, 0o644)  # whatever the umask
            os.rename(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            if not self._failing:
                self._on_problem(f"cannot write the metrics file {self.path}: {error.strerror}")
            self._failing = True
            return
        if self._failing:
            self._on_problem(f"the metrics file {self.path} is written again")
        self._failing = False

    def close(self) -> None:
        """The last word: the executor is down (``extsvc_up 0``), written at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._source.up = False
        self.write()


class MetricsHttpServer:
    """`GET /metrics` in the text format, or OpenMetrics when the scraper accepts it."""

    def __init__(self, host: str, port: int, source: MetricsSource) -> None:
        self.host = host
        self.port = port
        self._source = source
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_REQUEST_BYTES
        )

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await asyncio.wait_for(
                self._answer(reader), REQUEST_TIMEOUT
            )
        except (TimeoutError, ValueError, asyncio.LimitOverrunError, ConnectionError):
            status, content_type, body = "400 Bad Request", "text/plain", "bad request\n"
        payload = body.encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + payload)
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, str, str]:
        request_line = (await reader.readline()).decode("latin-1").split()
        accept = ""
        while True:  # the headers, up to the blank line
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
            return "400 Bad Request", "text/plain", "bad request\n"
        method, target, _ = request_line
        if target.split("?", 1)[0] != "/metrics":
            return "404 Not Found", "text/plain", "extsvc serves /metrics only\n"
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", "GET /metrics\n"
        openmetrics = "application/openmetrics-text" in accept
        body = self._source.text(openmetrics=openmetrics, live=True)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        return "200 OK", content_type, body
