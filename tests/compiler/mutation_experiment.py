"""The mutation experiment: mutated service files through ``extsvc validate``.

    .venv/bin/python -m tests.compiler.mutation_experiment [--files 20000] [--seed 11]

Writes ``--files`` mutated files (``tests.compiler.mutations``, seeded: the same
seed gives the same files) and runs ``extsvc validate -q FILE`` on each. A file
fails when stderr holds "Traceback" (the exit code alone is not enough: a
traceback also exits 1), the exit code is not 0 or 1, or it takes over
``--timeout`` seconds. To keep 20,000 runs to minutes, a worker process runs the
CLI's ``main`` for ``--batch`` files in turn, as ``python -m extsvc`` would (an
exception that escapes it is what prints a traceback); a worker that dies or
hangs has its batch run again one ``python -m extsvc validate`` process per file.
Prints the failing files grouped by the last line of their traceback; exit status
1 if any failed. ``--extsvc-path DIR`` runs another checkout (its ``extsvc``
package), to measure before a change.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.compiler.mutations import mutated_file, seed_files

REPO = Path(__file__).parents[2]


def _run(files: list[Path], timeout: float, env: dict[str, str]) -> tuple[str | None, str]:
    """(failure or None, stderr) of one ``python -m extsvc validate`` over ``files``."""
    command = [sys.executable, "-m", "extsvc", "validate", "-q", *map(str, files)]
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, env=env, check=False, cwd=files[0].parent
        )
    except subprocess.TimeoutExpired:
        return f"no answer in {timeout:g} s", ""
    stderr = done.stderr.decode("utf-8", "replace")
    if "Traceback" in stderr:
        return "traceback: " + stderr.strip().splitlines()[-1][:160], stderr
    if done.returncode not in (0, 1):
        return f"exit code {done.returncode}", stderr
    return None, stderr


def _worker(paths: list[str], timeout: int) -> None:
    """Run the CLI in this process for each file; one JSON line per file on stdout."""
    import contextlib
    import io
    import signal
    import traceback

    from extsvc.cli import main as extsvc_main

    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"no answer in {timeout} s")

    signal.signal(signal.SIGALRM, expired)
    for path in paths:
        stderr = io.StringIO()
        problem = None
        signal.alarm(timeout)
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                extsvc_main(["validate", "-q", path])
        except SystemExit as stop:
            if stop.code not in (0, 1, None):
                problem = f"exit code {stop.code}"
        except TimeoutError as error:
            problem = str(error)
        except BaseException as error:  # what would print a traceback
            last = traceback.format_exception_only(error)[-1].strip()
            problem = "traceback: " + last[:160]
        finally:
            signal.alarm(0)
        if problem is None and "Traceback" in stderr.getvalue():
            problem = "traceback: " + stderr.getvalue().strip().splitlines()[-1][:160]
        print(json.dumps({"path": path, "problem": problem}), flush=True)


def _run_batch(batch: list[Path], timeout: float, env: dict[str, str]) -> dict[Path, str | None]:
    """Each file's failure (or None), through workers: when one dies or hangs, the file
    it was on runs in a process of its own and a new worker takes the rest."""
    results: dict[Path, str | None] = {}
    remaining = list(batch)
    while remaining:
        command = [sys.executable, "-m", "tests.compiler.mutation_experiment", "--worker"]
        command += ["--timeout", str(int(timeout)), *map(str, remaining)]
        with contextlib.suppress(subprocess.TimeoutExpired):
            done = subprocess.run(
                command,
                capture_output=True,
                timeout=timeout * len(remaining) + 60,
                env=env,
                check=False,
                cwd=remaining[0].parent,  # not the repository: "-m" puts the cwd first on sys.path
            )
            for line in done.stdout.decode("utf-8", "replace").splitlines():
                with contextlib.suppress(json.JSONDecodeError, KeyError):
                    entry = json.loads(line)
                    results[Path(entry["path"])] = entry["problem"]
        missing = [path for path in remaining if path not in results]
        if missing:  # the worker died (or hung) on the first of these
            results[missing[0]], _ = _run([missing[0]], timeout, env)
            missing = missing[1:]
        remaining = missing
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--extsvc-path", help="run the extsvc package of this checkout")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        _worker(options.paths, int(options.timeout))
        return 0

    env = dict(os.environ, PYTHONPATH=str(REPO))
    if options.extsvc_path:
        # The other checkout's extsvc first; this one's tests (the worker) after it.
        env["PYTHONPATH"] = f"{Path(options.extsvc_path).resolve()}:{REPO}"
    rng = random.Random(options.seed)
    seeds = seed_files()
    failures: collections.Counter[str] = collections.Counter()
    failed_files = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="extsvc-mutations-") as work:
        folder = Path(work)
        for first in range(0, options.files, options.batch):
            batch = []
            for number in range(first, min(first + options.batch, options.files)):
                path = folder / f"m{number:06d}.yaml"
                path.write_bytes(mutated_file(rng, seeds))
                batch.append(path)
            for path, problem in _run_batch(batch, options.timeout, env).items():
                if problem is not None:
                    failed_files += 1
                    failures[problem] += 1
                    keep = folder.parent / f"extsvc-failing-{options.seed}-{path.name}"
                    keep.write_bytes(path.read_bytes())
            for path in batch:
                path.unlink()
    elapsed = time.monotonic() - started
    print(
        f"{options.files} mutated files (seed {options.seed}), {elapsed:.0f} s: "
        f"{failed_files} failed"
    )
    for problem, count in failures.most_common():
        print(f"  {count:6d}  {problem}")
    if failed_files:
        print(f"failing files kept as {tempfile.gettempdir()}/extsvc-failing-{options.seed}-*")
    return 1 if failed_files else 0


if __name__ == "__main__":
    sys.exit(main())
