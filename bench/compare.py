"""Two commits' benchmarks side by side, measured in one run, taking turns.

    .venv/bin/python bench/compare.py BEFORE [AFTER] [--bench NAME ...] [--turns N]

BEFORE and AFTER are git revisions of this repository (AFTER defaults to the
checkout this script runs from, uncommitted changes included). Each revision other
than the current checkout is checked out once under ``--work`` (a detached git
worktree with its own ``make install``, kept for the next comparison), then every
benchmark runs from each checkout in turn, BEFORE, AFTER, BEFORE, AFTER...: the
host's load, which comes and goes on a shared machine, hits both sides alike. Each
benchmark's own ratios (a figure followed by ``x``) and sizes are read off its output
and shown as one row per figure: its value at every turn, before and after.

A figure is named by its line with the numbers taken out, so a benchmark needs no
special output format; lines whose wording differs between the two revisions are
shown on rows of their own rather than matched.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_BENCHMARKS = (
    "compile_bench.py",
    "control_bench.py",
    "review_bench.py",
    "lifecycle_bench.py",
)
# A figure: a number with its unit. Ratios ("1.21 x", "3.55x") are what a comparison is
# about; absolute times are kept too, for the reader who wants them.
FIGURE = re.compile(r"(\d+(?:\.\d+)?)\s*(x|ms|MB|%|s)(?![\w])")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# What a benchmark says of its target is the same on both sides, and its verdict may
# change between them: neither names a figure.
TARGET = re.compile(r"\((?:target|floor)[^)]*\)|\b(?:OK|over|OVER)\s*$")


@dataclass
class Row:
    """One figure of one benchmark: its values at every turn, per side."""

    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)


def checkout(revision: str, work: Path) -> Path:
    """A ready checkout of ``revision`` (a worktree with its .venv), made once."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    directory = work / commit[:12]
    if not (directory / ".venv" / ".installed").exists():
        if not directory.exists():
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(directory), commit],
                cwd=REPOSITORY, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        print(f"installing {revision} ({commit[:12]}) in {directory}", flush=True)
        subprocess.run(["make", "install"], cwd=directory, check=True, stdout=subprocess.DEVNULL)
    return directory


def figures(output: str) -> dict[str, float]:
    """Each line's figures, named by the line's words and the figure's place in it."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        line = TARGET.sub("", line)
        matches = list(FIGURE.finditer(line))
        if not matches:
            continue
        words = " ".join(NUMBER.sub("#", line).split())
        for place, match in enumerate(matches):
            unit = match.group(2)
            found[f"{words} [{place}:{unit}]"] = float(match.group(1))
    return found


def run(checkout_dir: Path, benchmark: str) -> str:
    python = checkout_dir / ".venv" / "bin" / "python"
    script = checkout_dir / "bench" / benchmark
    if not script.exists():
        return ""
    done = subprocess.run(
        [str(python), str(script)], cwd=checkout_dir, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"  {benchmark} failed in {checkout_dir} (exit {done.returncode}):", flush=True)
        print("  " + (done.stderr.strip().splitlines() or [""])[-1], flush=True)
    return done.stdout


def shown(values: list[float]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    return f"{median:g} ({', '.join(f'{v:g}' for v in values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="git revision measured first in each turn")
    parser.add_argument("after", nargs="?", help="git revision (default: this checkout)")
    parser.add_argument("--bench", action="append", help=f"default: {' '.join(DEFAULT_BENCHMARKS)}")
    parser.add_argument("--turns", type=int, default=2, help="runs of each side (default 2)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/extsvc-bench-compare"))
    parser.add_argument("--ratios-only", action="store_true", help="show only figures in x")
    arguments = parser.parse_args()

    arguments.work.mkdir(parents=True, exist_ok=True)
    sides = {
        "before": checkout(arguments.before, arguments.work),
        "after": checkout(arguments.after, arguments.work) if arguments.after else REPOSITORY,
    }
    for benchmark in arguments.bench or DEFAULT_BENCHMARKS:
        rows: dict[str, Row] = {}
        for turn in range(arguments.turns):
            for side, directory in sides.items():
                print(f"== {benchmark} {side} ({turn + 1}/{arguments.turns})", flush=True)
                for name, value in figures(run(directory, benchmark)).items():
                    getattr(rows.setdefault(name, Row()), side).append(value)
        print(f"\n{benchmark}: median (each turn)   before -> after")
        for name, row in rows.items():
            if arguments.ratios_only and not name.endswith(":x]"):
                continue
            print(f"  {name}\n      {shown(row.before)}  ->  {shown(row.after)}")
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
