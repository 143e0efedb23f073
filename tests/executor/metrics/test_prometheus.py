"""`extsvc metrics`, `run --metrics-file` and `run --metrics-listen`, read by Prometheus's
own tools: promtool (Debian's `prometheus`), the official Python client's parsers, and a
real node_exporter reading the file through its textfile collector, scraped on loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from extsvc.executor.metrics.exposition import Family, Kind, render
from extsvc.executor.metrics.families import ExecutorCounters
from extsvc.executor.metrics.serve import MetricsFile, MetricsSource
from tests.executor.realrunc import (
    EXTSVC,
    IDLE,
    Daemon,
    compile_plan,
    shell_service,
    traces,
    unique,
    wait_for,
)

PROMTOOL = "promtool"
NODE_EXPORTER = "prometheus-node-exporter"
ALERT_TESTS = "metrics-alerts.test.yml"
DOCS = Path(__file__).resolve().parents[3] / "docs"


def samples(
    text: str, openmetrics: bool = False
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by the official client: (name, labels) -> value."""
    parse = parse_openmetrics if openmetrics else parse_text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parse(text)
        for sample in family.samples
    }


def value(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return parsed[(name, frozenset(labels.items()))]


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


@pytest.fixture(scope="module", autouse=True)
def prometheus_tools() -> None:
    for tool in (PROMTOOL, NODE_EXPORTER):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make test` installs Debian's prometheus packages")


# ----- the exposition itself


def test_label_values_are_escaped_and_both_formats_parse() -> None:
    family = Family("extsvc_example", Kind.COUNTER, 'help with a \\ and "quotes"')
    family.add(3, service='ext-a"b\\c\nd')
    text, openmetrics = render([family]), render([family], openmetrics=True)
    assert value(samples(text), "extsvc_example_total", service='ext-a"b\\c\nd') == 3
    assert value(samples(openmetrics, True), "extsvc_example_total", service='ext-a"b\\c\nd') == 3
    assert "# TYPE extsvc_example_total counter" in text
    assert "# TYPE extsvc_example counter" in openmetrics
    assert openmetrics.endswith("# EOF\n")
    assert promtool_check(text).returncode == 0


def test_a_family_without_samples_is_left_out() -> None:
    empty = Family("extsvc_nothing", Kind.GAUGE, "no samples")
    assert render([empty]) == "\n"
    assert render([empty], openmetrics=True) == "# EOF\n"


def test_the_file_is_rewritten_at_most_once_a_second(tmp_path: Path) -> None:
    counters = ExecutorCounters("0", 0.0)
    source = MetricsSource(counters, lambda: [])
    target = tmp_path / "extsvc.prom"
    metrics_file = MetricsFile(target, source, on_problem=print)
    writes: list[float] = []
    original = metrics_file.write

    def counted() -> None:
        writes.append(time.monotonic())
        original()

    metrics_file.write = counted  # type: ignore[method-assign]

    async def burst() -> None:
        for _ in range(50):
            counters.reloads += 1
            metrics_file.changed()
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.2)

    asyncio.run(burst())
    # 50 changes over a second: the first at once, then once the interval is over.
    assert 2 <= len(writes) <= 3
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(writes))
    # The last change is in the file: nothing is lost by the rate limit.
    assert value(samples(target.read_text()), "extsvc_reloads_total") == 50
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["extsvc.prom"]


# ----- a real executor with services in different states


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    tmp = tmp_path_factory.mktemp("metrics")
    names = {
        kind: unique(f"mx-{kind}") for kind in ("running", "failed", "done", "waiting", "sick")
    }
    services = {
        names["running"]: shell_service(names["running"], f"echo up; {IDLE}"),
        names["failed"]: shell_service(names["failed"], "exit 3", restart="never"),
        names["done"]: shell_service(names["done"], "echo done", restart="never"),
        names["waiting"]: shell_service(
            names["waiting"], IDLE, depends=[{"path": str(tmp / "never-there")}]
        ),
        names["sick"]: shell_service(
            names["sick"],
            IDLE,
            extsvc={
                "health": {
                    "exec": ["/bin/false"],
                    "interval": "200ms",
                    "timeout": "2s",
                    "retries": 1,
                }
            },
        ),
    }
    out, _ = compile_plan(tmp, services)
    textfiles = tmp / "textfiles"
    textfiles.mkdir()
    port = free_port()
    daemon = Daemon(
        tmp,
        out,
        list(names.values()),
        "--metrics-file",
        str(textfiles / "extsvc.prom"),
        "--metrics-listen",
        f"127.0.0.1:{port}",
    )
    try:
        daemon.start()
        ids = {kind: f"ext-{name}" for kind, name in names.items()}
        daemon.wait_state(ids["running"], "Running")
        daemon.wait_state(ids["failed"], "Failed")
        daemon.wait_state(ids["done"], "Finished")
        daemon.wait_state(ids["waiting"], "Waiting")
        wait_for(
            lambda: daemon.service(ids["sick"])["health"]["healthy"] is False, 15, "sick unhealthy"
        )
        yield {"daemon": daemon, "ids": ids, "port": port, "textfiles": textfiles}
    finally:
        daemon.force_cleanup()


def check_states(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], ids: dict[str, str]
) -> None:
    expected = {
        "running": "Running",
        "failed": "Failed",
        "done": "Finished",
        "waiting": "Waiting",
        "sick": "Running",
    }
    for kind, state in expected.items():
        one_hot = {
            s: value(parsed, "extsvc_service_state", service=ids[kind], state=s)
            for s in ("Initialized", "Waiting", "Preparing", "Running", "Stopping", "Finished",
                      "Failed", "Skipped")
        }  # fmt: skip
        assert one_hot == {s: (1 if s == state else 0) for s in one_hot}, kind


@pytest.mark.runc
def test_extsvc_metrics_shows_every_service_as_its_state(fleet: dict[str, object]) -> None:
    daemon, ids = fleet["daemon"], fleet["ids"]
    assert isinstance(daemon, Daemon) and isinstance(ids, dict)
    result = daemon.extsvc("metrics")
    assert result.returncode == 0, result.stderr
    checked = promtool_check(result.stdout)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    parsed = samples(result.stdout)
    check_states(parsed, ids)
    assert value(parsed, "extsvc_up") == 1
    assert value(parsed, "extsvc_service_last_exit_code", service=ids["failed"]) == 3
    assert value(parsed, "extsvc_service_last_exit_code", service=ids["done"]) == 0
    assert value(parsed, "extsvc_service_runs_total", service=ids["running"]) == 1
    assert value(parsed, "extsvc_service_health", service=ids["sick"], status="unhealthy") == 1
    assert value(parsed, "extsvc_service_health", service=ids["sick"], status="healthy") == 0
    # Only services with a health check have a health series.
    assert (
        "extsvc_service_health",
        frozenset({("service", ids["running"]), ("status", "unknown")}),
    ) not in parsed
    # Live readings of a running service's cgroup (cgroup v1 here: memory and cpuacct).
    assert value(parsed, "extsvc_service_memory_bytes", service=ids["running"]) > 0
    assert value(parsed, "extsvc_service_cpu_seconds_total", service=ids["running"]) >= 0
    started = value(parsed, "extsvc_service_run_start_timestamp_seconds", service=ids["running"])
    assert time.time() - 120 < started <= time.time()
    assert value(parsed, "extsvc_control_requests_total", op="metrics") >= 1
    info = [k for k in parsed if k[0] == "extsvc_build_info"]
    assert len(info) == 1 and dict(info[0][1])["plan_digest"]


@pytest.mark.runc
def test_openmetrics_from_the_command_and_over_http(fleet: dict[str, object]) -> None:
    daemon, ids, port = fleet["daemon"], fleet["ids"], fleet["port"]
    assert isinstance(daemon, Daemon) and isinstance(ids, dict)
    result = daemon.extsvc("metrics", "--openmetrics")
    assert result.returncode == 0, result.stderr
    check_states(samples(result.stdout, openmetrics=True), ids)

    content_type, body = http_get(
        f"http://127.0.0.1:{port}/metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    check_states(samples(body, openmetrics=True), ids)
    content_type, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    assert promtool_check(body).returncode == 0
    check_states(samples(body), ids)
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_get(f"http://127.0.0.1:{port}/other")
    assert refused.value.code == 404


@pytest.mark.runc
def test_node_exporter_exposes_the_metrics_file(fleet: dict[str, object]) -> None:
    ids, textfiles = fleet["ids"], fleet["textfiles"]
    assert isinstance(ids, dict) and isinstance(textfiles, Path)
    target = textfiles / "extsvc.prom"

    def file_shows_states() -> bool:
        try:
            check_states(samples(target.read_text()), ids)
        except AssertionError:
            return False
        return True

    # Rewritten at most once a second: the last changes are in it within that.
    wait_for(file_shows_states, 5, "the metrics file to show every state")
    checked = promtool_check(target.read_text())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    exporter = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.textfile", f"--collector.textfile.directory={textfiles}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        scraped: dict[str, str] = {}

        def scrape() -> bool:
            try:
                scraped["body"] = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            except OSError:
                return False
            return True

        wait_for(scrape, 20, "node_exporter to answer")
        parsed = samples(scraped["body"])
        assert value(parsed, "node_textfile_scrape_error") == 0
        check_states(parsed, ids)
        assert value(parsed, "extsvc_up") == 1
    finally:
        exporter.terminate()
        exporter.wait(10)


@pytest.mark.runc
def test_an_idle_executor_does_not_wake_up_and_a_change_rewrites_the_file(
    fleet: dict[str, object],
) -> None:
    daemon, ids, textfiles = fleet["daemon"], fleet["ids"], fleet["textfiles"]
    assert isinstance(daemon, Daemon) and isinstance(ids, dict) and isinstance(textfiles, Path)
    # Health checks and a path condition wake the executor every 200 ms: stop those first.
    daemon.control("stop", ids["sick"])
    daemon.control("stop", ids["waiting"])
    target = textfiles / "extsvc.prom"
    time.sleep(1.5)  # the rewrite due after that stop
    assert daemon.process is not None
    process = psutil.Process(daemon.process.pid)
    written, switches = target.stat().st_mtime_ns, sum(process.num_ctx_switches())
    time.sleep(3)
    assert sum(process.num_ctx_switches()) == switches
    assert target.stat().st_mtime_ns == written
    daemon.control("stop", ids["running"])
    wait_for(
        lambda: (
            value(
                samples(target.read_text()),
                "extsvc_service_state",
                service=ids["running"],
                state="Finished",
            )
            == 1
        ),
        5,
        "the file to show the stop",
    )


@pytest.mark.runc
def test_a_stopped_executor_says_so_in_the_file_and_the_command(tmp_path: Path) -> None:
    name = unique("mx-stop")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    target = tmp_path / "extsvc.prom"
    daemon = Daemon(tmp_path, out, [name], "--metrics-file", str(target))
    try:
        daemon.start().wait_state(f"ext-{name}", "Running")
        assert daemon.stop() == 0
        parsed = samples(target.read_text())
        assert value(parsed, "extsvc_up") == 0
        assert value(parsed, "extsvc_service_state", service=f"ext-{name}", state="Finished") == 1
        result = daemon.extsvc("metrics")
        assert result.returncode == 3
        assert "no extsvc daemon is listening" in result.stderr
        assert promtool_check(result.stdout).returncode == 0
        down = samples(result.stdout)
        assert value(down, "extsvc_up") == 0
        assert value(down, "extsvc_service_container_present", service=f"ext-{name}") == 0
        assert traces(daemon.state_dir, [name]) == []
    finally:
        daemon.force_cleanup()


@pytest.mark.runc
def test_a_busy_metrics_port_is_said_and_the_services_still_run(tmp_path: Path) -> None:
    name = unique("mx-port")
    out, _ = compile_plan(tmp_path, {name: shell_service(name, IDLE)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(tmp_path, out, [name], "--metrics-listen", f"127.0.0.1:{port}")
        try:
            daemon.start().wait_state(f"ext-{name}", "Running")
            wait_for(lambda: "cannot serve metrics" in daemon.stderr(), 10, "the notice")
            assert f"127.0.0.1:{port}" in daemon.stderr()
        finally:
            daemon.force_cleanup()


@pytest.mark.parametrize("bad", ["9477", "localhost", ":9477", "127.0.0.1:0", "127.0.0.1:70000"])
def test_a_bad_listen_address_is_a_usage_error(bad: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [*EXTSVC, "run", str(tmp_path), "--metrics-listen", bad],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "is not ADDR:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_alert_rules_are_valid_and_fire_as_documented() -> None:
    rules = DOCS / "metrics-alerts.yml"
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", str(Path(__file__).parents[1] / "data" / ALERT_TESTS)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
