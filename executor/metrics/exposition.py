"""Metric families rendered in Prometheus's text format (0.0.4) and in OpenMetrics 1.0.

Pure: families in, text out. The names follow Prometheus's conventions (base units
in the name, ``_total`` on counters); a counter's family is named without its
``_total`` in OpenMetrics and with it in the 0.0.4 text format, as each format asks.

Invariants every rendering keeps (promtool and the official parser check them):
one HELP and one TYPE line per family, its samples right below, label values
escaped (backslash, double quote, newline), no family without a sample, and
OpenMetrics' closing ``# EOF``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Kind(Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    # OpenMetrics' info type (a constant 1 carrying labels); a gauge in the 0.0.4 format.
    INFO = "info"


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


@dataclass
class Family:
    """One metric: ``name`` is the family name (no ``_total``, no ``_info``)."""

    name: str
    kind: Kind
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append(Sample(labels, value))


def render(families: Iterable[Family], openmetrics: bool = False) -> str:
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.extend(_family_lines(family, openmetrics))
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _family_lines(family: Family, openmetrics: bool) -> list[str]:
    suffix = {Kind.COUNTER: "_total", Kind.INFO: "_info", Kind.GAUGE: ""}[family.kind]
    sample_name = family.name + suffix
    if openmetrics:
        declared, kind = family.name, family.kind.value
    else:
        declared = sample_name
        kind = "gauge" if family.kind is Kind.INFO else family.kind.value
    lines = [
        f"# HELP {declared} {_escape_help(family.help)}",
        f"# TYPE {declared} {kind}",
    ]
    for sample in family.samples:
        lines.append(f"{sample_name}{_labels(sample.labels)} {_number(sample.value)}")
    return lines


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
