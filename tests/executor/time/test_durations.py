"""Durations as people read and write them: ages like Talos's, a restart-limit window as written."""

from __future__ import annotations

from extsvc.compiler.format.durations import format_duration, short_duration


def test_format_duration_like_talos_ages() -> None:
    assert [format_duration(s) for s in (0.2, 12.4, 167, 3725)] == [
        "200ms",
        "12s",
        "2m47s",
        "1h2m5s",
    ]


def test_a_restart_limit_window_reads_as_written() -> None:
    assert [short_duration(s) for s in (3600, 60, 7210, 4200, 600, 0.5)] == [
        "1h", "1m", "2h10s", "1h10m", "10m", "500ms",
    ]  # fmt: skip
