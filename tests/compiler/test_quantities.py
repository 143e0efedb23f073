"""Durations and sizes: one parser for `extsvc run` options and the x-extsvc block."""

from __future__ import annotations

import pytest

from extsvc.compiler.format.quantities import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("1m30s", 90.0), ("2h", 7200.0), ("0.5s", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 s", "1x", "s", "1m-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"write e\.g\. 500ms, 5s, 1m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512Mi", 512 * 1024**2),
        ("1Gi", 1024**3),
        ("1G", 1000**3),
        ("64k", 64000),
        ("1.5Ki", 1536),
        ("4096", 4096),
        (4096, 4096),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


def test_parse_size_refuses_a_fraction_of_a_byte() -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        parse_size("0.1Gi")  # 107374182.4 bytes


@pytest.mark.parametrize("value", ["", "512MB", "1g", "Mi", "-1", "1 Gi", -5])
def test_parse_size_rejects(value: str | int) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)
