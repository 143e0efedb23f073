"""Run every benchmark in bench/ in turn (``make bench``); each prints its own ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = (
    "compile_bench.py",
    "schemacheck_bench.py",
    "control_bench.py",
    "lifecycle_bench.py",
    "review_bench.py",
    "extension_bench.py",
)


def main() -> int:
    failed = 0
    for name in BENCHMARKS:
        script = Path(__file__).with_name(name)
        print(f"== {name}", flush=True)
        failed |= subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
