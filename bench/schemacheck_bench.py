"""Validate the hello-world config.json with jsonschema and with compiler.schemacheck.

    python bench/schemacheck_bench.py [-n N] [--config PATH]

Both validators run in the same process on the same document against the vendored OCI
runtime-spec schema (oci-schemas/config-schema.json); the script prints the per-call time
of each (best of several rounds of N calls, to shrug off noise), the speed-up, and the
one-off costs (import, compile) that matter for `extsvc validate`'s start-up budget.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCHEMAS = REPO / "oci-schemas"
# Byte-for-byte the Talos-generated example config (shared/examples/hello-world.config.json).
DEFAULT_CONFIG = REPO / "tests/golden/hello-world/expected/bundles/hello-world/config.json"
ROUNDS = 5


def timed(action: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def per_call(run: Callable[[], object], n: int) -> float:
    """Best-of-ROUNDS mean seconds per call of ``run`` over ``n`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            run()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="calls per round (default 200)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    args = parser.parse_args()

    documents = {p.name: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}
    schema = documents["config-schema.json"]
    config = json.loads(args.config.read_text())

    from extsvc.compiler.format import schemacheck

    ours = schemacheck.compile_schema(schema, documents)
    compile_ours = min(
        timed(lambda: schemacheck.compile_schema(schema, documents))[1] for _ in range(ROUNDS)
    )
    oracle = _jsonschema_validator(schema, documents)

    ours_errors = list(ours.iter_errors(config))
    oracle_errors = list(oracle.iter_errors(config))
    if bool(ours_errors) != bool(oracle_errors):
        print(f"verdicts differ: ours {ours_errors}, jsonschema {oracle_errors}")
        return 1

    t_oracle = per_call(lambda: list(oracle.iter_errors(config)), max(1, args.n // 10))
    t_iter = per_call(lambda: list(ours.iter_errors(config)), args.n)
    t_valid = per_call(lambda: ours.is_valid(config), args.n)

    verdict = "valid" if not ours_errors else f"{len(ours_errors)} errors"
    print(f"document: {args.config} ({verdict}); {ROUNDS} rounds, best round counts")
    print(f"jsonschema   {'iter_errors:':12} {t_oracle * 1e3:8.3f} ms/call")
    for name, seconds in (("iter_errors:", t_iter), ("is_valid:", t_valid)):
        speedup = t_oracle / seconds
        print(f"schemacheck  {name:12} {seconds * 1e3:8.3f} ms/call   speed-up {speedup:6.1f}x")
    print(f"compile_schema(config-schema.json): {compile_ours * 1e3:.1f} ms (once per process)")
    print("import, fresh interpreter (best of 5):")
    for module, preloaded in [
        ("extsvc.compiler.format.schemacheck", ""),
        ("extsvc.compiler.format.schemacheck", "re, dataclasses"),
        ("jsonschema", ""),
    ]:
        after = f" after importing {preloaded}" if preloaded else ""
        print(f"  {module:22}{import_time(module, preloaded) * 1e3:7.1f} ms{after}")
    return 0


def import_time(module: str, preloaded: str) -> float:
    """Best-of-5 seconds to import ``module`` in a new interpreter (bytecode cached)."""
    setup = f"import {preloaded}; " if preloaded else ""
    code = (
        f"import time; {setup}t = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - t)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(ROUNDS)
    ]
    return min(float(out) for out in runs)


def _jsonschema_validator(schema: dict[str, Any], documents: dict[str, Any]) -> Any:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    registry: Registry[Any] = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT4))
        for name, doc in documents.items()
    )
    return jsonschema.Draft4Validator(schema, registry=registry)


if __name__ == "__main__":
    sys.exit(main())
