"""Review tools' speed, as figures measured in one run.

1. ``extsvc diff`` of two compiled outputs of 1,000 services (every tenth one changed):
   milliseconds per service beyond interpreter start.
2. What ``origins.json`` (for ``extsvc explain``) costs ``compile``: the share of an
   in-process compile of 1,000 services spent building and rendering origins.
3. ``extsvc plan --simulate``: simulated seconds per real second for 100 services,
   a third of them in a crash loop, over 10 simulated minutes (virtual time: the
   executor's own supervisor, nothing run).

Medians of several runs in this one process. Run: ``make bench`` or
``.venv/bin/python bench/review_bench.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.compile_bench import generate, timed  # noqa: E402

BIN = Path(sys.executable).parent
SERVICES = 1000


def _median(function: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def origins_share(source: Path) -> tuple[float, float]:
    from extsvc.compiler.canonical import canonical_json
    from extsvc.compiler.pipeline import CompileOptions, compile
    from extsvc.compiler.render import origins_document
    from extsvc.compiler.sources import collect_sources

    sources, _ = collect_sources([str(source)])
    options = CompileOptions(rootfs_base="/usr/local/lib/containers", arch="amd64")
    result = compile(sources, options)
    whole = _median(lambda: compile(sources, options), 5)

    def origins_only() -> None:
        for name, built in result.built.items():
            data = result.files[f"bundles/{name}/config.json"]
            canonical_json(origins_document(built, data))

    return whole, _median(origins_only, 5)


def simulation_speed(scratch: Path) -> tuple[float, float]:
    from extsvc.compiler.format.plan import load_plan
    from extsvc.executor.simulate.boot import simulate
    from extsvc.executor.simulate.facts import facts_from_tree

    source = scratch / "sim"
    source.mkdir()
    for index in range(100):
        depends = f"depends:\n  - service: ext-s{index - 1:03d}\n" if index % 10 else ""
        (source / f"s{index:03d}.yaml").write_text(
            f"name: s{index:03d}\ncontainer:\n  entrypoint: /x\n{depends}restart: always\n"
        )
    out = scratch / "sim-out"
    subprocess.run(
        [str(BIN / "extsvc"), "compile", str(source), "-o", str(out), "--arch", "amd64"],
        check=True,
        capture_output=True,
    )
    crashing = {f"ext-s{i:03d}": {"runs": [{"exit": 1, "after": "2s"}]} for i in range(0, 100, 3)}
    facts = facts_from_tree({"until": "10m", "services": crashing})
    plan = load_plan(out, machine="x86_64")
    elapsed = _median(lambda: simulate(plan, facts), 3)
    return facts.until, elapsed


def main() -> int:
    python = str(BIN / "python")
    extsvc = str(BIN / "extsvc")
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        old, new = scratch / "old", scratch / "new"
        old.mkdir()
        generate(old, SERVICES)
        subprocess.run(["cp", "-r", str(old), str(new)], check=True)
        for path in sorted(new.glob("*.yaml"))[::10]:
            path.write_text(path.read_text().replace("MODE=production", "MODE=debug"))
        outs = []
        for side in (old, new):
            out = scratch / f"{side.name}-out"
            subprocess.run(
                [extsvc, "compile", str(side), "-o", str(out), "--arch", "amd64"],
                check=True,
                capture_output=True,
            )
            outs.append(str(out))
        interpreter = timed([python, "-c", "pass"], 11)
        diff = timed([extsvc, "diff", *outs], 5, check=False)
        print(
            f"diff of two {SERVICES}-service outputs: "
            f"{(diff - interpreter) / SERVICES * 1000:.2f} ms per service beyond interpreter start"
        )
        whole, origins = origins_share(old)
        print(
            f"origins.json share of compile ({SERVICES} services, in process): "
            f"{origins / whole:.1%} ({origins * 1000:.0f} ms of {whole * 1000:.0f} ms)"
        )
        simulated, real = simulation_speed(scratch)
        print(
            f"simulation of 100 services (33 crash-looping) for {simulated:.0f} s: "
            f"{real:.2f} s real, {simulated / real:.0f}x faster than the boot it simulates"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
