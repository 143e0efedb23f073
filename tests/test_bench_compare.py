"""bench/compare.py names each figure by its line, so two revisions' outputs line up."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


@functools.cache
def _compare() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_figure_is_named_by_its_words_and_place_whatever_the_numbers_and_verdict() -> None:
    figures = _compare().figures
    before = figures("  ratio validate / baseline      1.14 x    (target <= 1.5x)   OK\n")
    after = figures("  ratio validate / baseline      1.62 x    (target <= 1.5x)   OVER\n")
    assert before == {"ratio validate / baseline # x [0:x]": 1.14}
    assert after == {"ratio validate / baseline # x [0:x]": 1.62}


def test_every_figure_of_a_line_is_kept_with_its_unit() -> None:
    line = "1. cold start: extsvc 277 ms vs bare `runc run` 78 ms -> 3.55x (target <= 2x)"
    named = _compare().figures(line)
    assert sorted(named.values()) == [3.55, 78.0, 277.0]
    assert [name.rsplit("[", 1)[1] for name in named] == ["0:ms]", "1:ms]", "2:x]"]


def test_lines_without_figures_are_not_figures() -> None:
    assert _compare().figures("== lifecycle_bench.py\nhost: 2 CPUs\n") == {}
