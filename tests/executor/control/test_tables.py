"""What `extsvc service` prints: tables like talosctl's, and a folded failure that reads the same
in the event and in the detail view."""

from __future__ import annotations

import time

from extsvc.executor.cli.servicetext import service_detail, services_table
from extsvc.executor.service.clock import Moment
from extsvc.executor.service.states import Event, ServiceState, folded


def test_tables_look_like_talosctl() -> None:
    now = time.time()
    table = services_table(
        [
            {
                "id": "ext-a",
                "state": "Running",
                "health": "?",
                "lastChange": now - 167,
                "lastEvent": "x",
            }
        ],
        now,
    )
    assert table.splitlines() == [
        "SERVICE   STATE     HEALTH   LAST-CHANGE   LAST-EVENT",
        "ext-a     Running   ?        2m47s ago     x",
    ]
    detail = service_detail(
        {
            "id": "ext-a", "state": "Running", "health": "?", "pid": 42, "restarts": 1,
            "restartPolicy": "always", "cpuSeconds": 0.5, "memoryBytes": 3 * 1024 * 1024,
            "processes": [{}, {}],
            "events": [
                {"state": "Running", "message": "Started task", "time": now - 2},
                {"state": "Preparing", "message": "Running pre state", "time": now - 3},
            ],
        },
        now,
    )  # fmt: skip
    assert "MEMORY   3.0 MiB (2 processes)" in detail
    assert "EVENTS   [Running]: Started task (2s ago)" in detail
    assert "         [Preparing]: Running pre state (3s ago)" in detail


def test_a_folded_failure_reads_the_same_in_the_event_and_in_the_detail_view() -> None:
    assert folded("task failed", 1) == "task failed"
    assert folded("task failed", 12) == "task failed (\u00d712)"
    now = time.time()
    events = [
        Event(
            ServiceState.WAITING, "task failed; restarting in 5s", Moment(now - 1, 0, 0), True, 3
        ),
        Event(ServiceState.PREPARING, "Running pre state", Moment(now - 9, 0, 0)),
    ]
    detail = service_detail(
        {
            "id": "ext-a", "state": "Waiting", "health": "?", "pid": None, "restarts": 3,
            "restartPolicy": "always", "events": [event.to_json() for event in events],
        },
        now,
    )  # fmt: skip
    assert events[0].text == "task failed; restarting in 5s (\u00d73)"
    assert f"EVENTS   [Waiting]: {events[0].text} (1s ago)" in detail.splitlines()
    assert "         [Preparing]: Running pre state (9s ago)" in detail.splitlines()
