"""Compiler speed, as ratios measured in one run.

1. ``extsvc compile`` of 1,000 generated services: milliseconds per service
   beyond interpreter start (``python -c pass``). Target: <= 2 ms. Beside it, how much
   of that is CPU (user + system): the wall clock also waits for the disk, which on a
   shared VM comes and goes.
2. ``extsvc validate`` of one file against ``python -c "import yaml, click"``.
   Target: <= 1.5x.
3. Hostile and large input through ``extsvc validate``, in milliseconds per file beyond
   interpreter start: an alias bomb (refused at 100,000 nodes) and a valid chain of
   5,000 services (5,000 levels; no recursion). These were timing assertions in the
   tests; here they are figures to watch.

Each figure is the median of several runs taken in this same process, so the
machine's noise hits both sides of a ratio alike. Run: ``make bench`` or
``.venv/bin/python bench/compile_bench.py``.
"""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICES = 1000
BIN = Path(sys.executable).parent


def generate(directory: Path, count: int) -> None:
    """``count`` services of realistic shape: mounts, environment, dependency chains."""
    for index in range(count):
        depends = (
            f"  - service: ext-svc-{index - 1:04d}\n"
            if index % 10
            else "  - network: [addresses]\n"
        )
        (directory / f"svc-{index:04d}.yaml").write_text(
            f"name: svc-{index:04d}\n"
            "container:\n"
            "  entrypoint: ./run\n"
            "  args: [--verbose, --port, '80']\n"
            "  environment:\n"
            f"    - INDEX={index}\n"
            "    - MODE=production\n"
            "  mounts:\n"
            f"    - source: /var/lib/svc-{index:04d}\n"
            "      destination: /data\n"
            "      type: bind\n"
            "      options: [rbind, rw]\n"
            "  security:\n"
            "    writeableRootfs: " + ("true" if index % 3 == 0 else "false") + "\n"
            "depends:\n" + depends + "restart: always\n"
        )


CHAIN = 5000


def generate_chain(directory: Path, count: int) -> None:
    """``count`` minimal services, each waiting for the one before."""
    for index in range(count):
        depends = f"depends:\n  - service: ext-c{index - 1:04d}\n" if index else ""
        (directory / f"c{index:04d}.yaml").write_text(
            f"name: c{index:04d}\ncontainer:\n  entrypoint: /x\n{depends}restart: always\n"
        )


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """'Billion laughs': width**levels strings in a 700-byte file."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


# Measure extsvc as installed: pip byte-compiles an installed package (yaml and
# click, the baseline, have their .pyc files), so ours get compiled up front and
# PYTHONDONTWRITEBYTECODE (set in some sandboxes) must not force recompiling.
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
REPOSITORY = Path(__file__).resolve().parents[1]


def timed(command: list[str], repeat: int, check: bool = True) -> float:
    """Median wall time of ``command`` in seconds; a failure aborts the benchmark unless
    ``check`` is false (input that must be refused)."""
    return measured(command, repeat, check)[0]


def measured(command: list[str], repeat: int, check: bool = True) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``command``, in seconds.
    The CPU time leaves out what the machine's disk and its other work add to the wall."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            command,
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENVIRONMENT,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    python = str(BIN / "python")
    extsvc = str(BIN / "extsvc")
    for package in ("compiler", "executor", "oci-schemas"):
        compileall.compile_dir(REPOSITORY / package, quiet=1)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        generate(source, SERVICES)
        out = Path(scratch) / "out"
        interpreter, interpreter_cpu = measured([python, "-c", "pass"], 11)
        compile_command = [extsvc, "compile", str(source), "-o", str(out), "--arch", "amd64"]
        compile_time, compile_cpu = measured(compile_command, 5)
        per_service_ms = (compile_time - interpreter) / SERVICES * 1000
        per_service_cpu_ms = (compile_cpu - interpreter_cpu) / SERVICES * 1000
        baseline = timed([python, "-c", "import yaml, click"], 21)
        validate = timed([extsvc, "validate", "-q", str(source / "svc-0000.yaml")], 21)
        bomb = Path(scratch) / "bomb.yaml"
        bomb.write_text(alias_bomb())
        bomb_time = timed([extsvc, "validate", "-q", str(bomb)], 5, check=False)
        chain = Path(scratch) / "chain"
        chain.mkdir()
        generate_chain(chain, CHAIN)
        chain_time = timed([extsvc, "validate", "-q", str(chain)], 3)
    ratio = validate / baseline
    print(f"interpreter start            {interpreter * 1000:8.1f} ms")
    print(f"compile {SERVICES} services        {compile_time * 1000:8.1f} ms")
    print(
        f"  per service beyond start   {per_service_ms:8.3f} ms   (target <= 2 ms)   "
        f"{'OK' if per_service_ms <= 2 else 'OVER'}"
    )
    cpu = f"  of it CPU (user + system)  {per_service_cpu_ms:8.3f} ms"
    print(f"{cpu}   (the rest: waiting for the disk and for the host's other work)")
    print(f"import yaml, click           {baseline * 1000:8.1f} ms")
    print(f"extsvc validate (one file)   {validate * 1000:8.1f} ms")
    print(
        f"  ratio validate / baseline  {ratio:8.2f} x    (target <= 1.5x)   "
        f"{'OK' if ratio <= 1.5 else 'OVER'}"
    )
    print(f"validate an alias bomb       {(bomb_time - interpreter) * 1000:8.1f} ms beyond start")
    chain_ms = (chain_time - interpreter) / CHAIN * 1000
    print(f"validate a {CHAIN}-service chain {chain_ms:6.3f} ms per service beyond start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
