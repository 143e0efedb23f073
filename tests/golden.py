"""Golden cases: tests/golden/<case>/input/*.yaml -> tests/golden/<case>/expected/.

``python -m tests.golden --update`` (what ``make golden`` runs) rewrites every
``expected/`` folder from its inputs; it never touches an input. Each case may
hold ``options.json`` (``{"rootfsBase": "/opt/ext"}``) and ``configs/*.yaml``
(ExtensionServiceConfig documents, compiled as ``--service-config``); the architecture is
always amd64 so goldens do not depend on the machine that writes them.
Warnings go to ``expected/diagnostics.txt`` so a golden also pins what a user
is told.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from extsvc.compiler.defaults import DEFAULT_ROOTFS_BASE
from extsvc.compiler.pipeline import CompileOptions, CompileResult, compile
from extsvc.compiler.sources import SourceFile

GOLDEN_ROOT = Path(__file__).parent / "golden"
DIAGNOSTICS_FILE = "diagnostics.txt"


def case_dirs() -> list[Path]:
    return sorted(path for path in GOLDEN_ROOT.iterdir() if (path / "input").is_dir())


def case_options(case: Path) -> CompileOptions:
    options_file = case / "options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    return CompileOptions(rootfs_base=options.get("rootfsBase", DEFAULT_ROOTFS_BASE), arch="amd64")


def case_sources(case: Path, reverse: bool = False) -> list[SourceFile]:
    files = sorted((case / "input").glob("*.yaml"), reverse=reverse)
    return [SourceFile(f"input/{path.name}", path.read_bytes()) for path in files]


def case_configs(case: Path) -> list[SourceFile]:
    """``configs/*.yaml``: ExtensionServiceConfig documents, as ``--service-config``."""
    files = sorted((case / "configs").glob("*.yaml"))
    return [SourceFile(f"configs/{path.name}", path.read_bytes()) for path in files]


def compile_case(case: Path, reverse: bool = False) -> CompileResult:
    return compile(case_sources(case, reverse), case_options(case), case_configs(case))


def rendered_outputs(result: CompileResult) -> dict[str, bytes]:
    """What a case's expected/ folder holds: the compiled files plus the diagnostics text."""
    outputs = dict(result.files)
    text = "".join(d.render() + "\n" for d in result.diagnostics)
    if text:
        outputs[DIAGNOSTICS_FILE] = text.encode("utf-8")
    return outputs


def expected_outputs(case: Path) -> dict[str, bytes]:
    expected = case / "expected"
    return {
        path.relative_to(expected).as_posix(): path.read_bytes()
        for path in sorted(expected.rglob("*"))
        if path.is_file()
    }


def update(case: Path) -> bool:
    """Rewrite ``case/expected``; True when anything changed."""
    outputs = rendered_outputs(compile_case(case))
    if outputs == expected_outputs(case) if (case / "expected").exists() else False:
        return False
    shutil.rmtree(case / "expected", ignore_errors=True)
    for relative, data in outputs.items():
        target = case / "expected" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return True


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print("usage: python -m tests.golden --update", file=sys.stderr)
        return 2
    for case in case_dirs():
        result = compile_case(case)
        if not result.ok:
            print(f"{case.name}: does not compile; fix the input:", file=sys.stderr)
            for diagnostic in result.diagnostics:
                print(diagnostic.render(), file=sys.stderr)
            return 1
        print(f"{case.name}: {'updated' if update(case) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
