"""Golden cases of the review tools: ``tests/review/<tool>/<case>/`` -> ``expected.*``.

``python -m tests.review.cases --update`` (part of ``make golden``) rewrites
every ``expected.*`` file from its inputs and never touches an input.

* ``diff/<case>/``: ``old/`` and ``new/`` source directories, optionally
  ``patch.json`` (edits applied to the compiled new side, for what no YAML
  field can express yet: capabilities, namespaces, seccomp, resources);
  expected ``expected.txt`` (the text report) and ``expected.json``.
* ``explain/<case>/``: ``input/`` sources; expected ``<service>.txt`` and
  ``<service>.json`` for every service.
* ``simulate/<case>/``: ``input/`` sources and ``facts.yaml``; expected
  ``expected.txt`` (the timeline) and ``expected.json``.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extsvc.compiler.format.plan import sha256_digest
from extsvc.compiler.review import diffreport, explain
from extsvc.compiler.review.diff import CompiledOutput, diff_outputs
from extsvc.compiler.review.outputs import compile_directory

ROOT = Path(__file__).parent
BASE = "/usr/local/lib/containers"


def cases(tool: str) -> list[Path]:
    return sorted(path for path in (ROOT / tool).iterdir() if path.is_dir())


def _compile(path: Path, label: str) -> CompiledOutput:
    return compile_directory(path, rootfs_base=BASE, arch="amd64", label=label)


def _apply(output: CompiledOutput, patch: list[dict[str, Any]]) -> CompiledOutput:
    """Edits of the compiled new side: {service, in: config|plan, path, op, value}."""
    configs = copy.deepcopy(dict(output.configs))
    plan = copy.deepcopy(dict(output.plan))
    for edit in patch:
        root = (
            configs[edit["service"]]
            if edit["in"] == "config"
            else plan["services"][edit["service"]]
        )
        *parents, last = edit["path"]
        for key in parents:
            root = root[key] if isinstance(root, list) else root.setdefault(key, {})
        op = edit["op"]
        if op == "set":
            root[last] = edit["value"]
        elif op == "delete":
            del root[last]
        elif op == "append":
            root[last].append(edit["value"])
        elif op == "remove":
            root[last].remove(edit["value"])
        else:
            raise ValueError(f"unknown patch op {op!r}")
    return CompiledOutput(plan=plan, configs=configs, label=output.label)


def diff_case(case: Path) -> dict[str, bytes]:
    old = _compile(case / "old", "old")
    new = _compile(case / "new", "new")
    patch_file = case / "patch.json"
    if patch_file.exists():
        new = _apply(new, json.loads(patch_file.read_text()))
    changes = diff_outputs(old, new)
    report = diffreport.to_json(changes, old="old", new="new")
    return {
        "expected.txt": diffreport.render_text(changes).encode(),
        "expected.json": (json.dumps(report, indent=2, sort_keys=True) + "\n").encode(),
    }


def explain_case(case: Path) -> dict[str, bytes]:
    output = _compile(case / "input", "input")
    files: dict[str, bytes] = {}
    for service_id in output.service_ids():
        entry = output.plan_entry(service_id)
        config_bytes = output.files[f"{entry['bundle']}/config.json"]
        rows = explain.explain_config(output.configs[service_id], output.origins[service_id])
        digest = sha256_digest(config_bytes)
        document = explain.to_json(service_id, entry["source"], digest, rows)
        files[f"{service_id}.txt"] = explain.render_text(service_id, entry["source"], rows).encode()
        files[f"{service_id}.json"] = (
            json.dumps(document, indent=2, sort_keys=True) + "\n"
        ).encode()
    return files


def simulate_case(case: Path) -> dict[str, bytes]:
    """Compile ``input/`` into a temporary OUT and simulate its boot under ``facts.yaml``."""
    from extsvc.compiler.format.plan import load_plan
    from extsvc.compiler.pipeline import CompileOptions, compile
    from extsvc.compiler.sources import collect_sources
    from extsvc.compiler.write import write_tree
    from extsvc.executor.simulate.boot import render_text, simulate, to_json
    from extsvc.executor.simulate.facts import load_facts

    sources, _ = collect_sources([str(case / "input")])
    result = compile(sources, CompileOptions(rootfs_base=BASE, arch="amd64"))
    assert result.ok, [d.render() for d in result.diagnostics]
    with tempfile.TemporaryDirectory() as temporary:
        out = Path(temporary) / "out"
        write_tree(result.files, out)
        simulation = simulate(load_plan(out, machine="x86_64"), load_facts(case / "facts.yaml"))
    document = json.dumps(to_json(simulation), indent=2, sort_keys=True) + "\n"
    return {
        "expected.txt": render_text(simulation).encode(),
        "expected.json": document.encode(),
    }


TOOLS: dict[str, Callable[[Path], dict[str, bytes]]] = {
    "diff": diff_case,
    "explain": explain_case,
    "simulate": simulate_case,
}


def expected(case: Path, produced: dict[str, bytes]) -> dict[str, bytes]:
    return {name: (case / name).read_bytes() for name in produced if (case / name).exists()}


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print("usage: python -m tests.review.cases --update", file=sys.stderr)
        return 2
    for tool, produce in TOOLS.items():
        for case in cases(tool):
            produced = produce(case)
            changed = expected(case, produced) != produced
            for name, data in produced.items():
                (case / name).write_bytes(data)
            print(f"{tool}/{case.name}: {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
