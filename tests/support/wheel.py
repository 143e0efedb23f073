"""A wheel of this checkout, built from a clean copy of it.

setuptools builds in ``build/lib`` of the source tree and reuses what it finds there: a
checkout where modules were moved or deleted would ship them again. The copy holds
what the distribution is made of (uncommitted changes included) and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The folders of the source tree installed as extsvc.<name>.
PACKAGE_FOLDERS = ("compiler", "executor", "extension")


def build_wheel(into: Path) -> Path:
    """The wheel, written into ``into``; its path."""
    with tempfile.TemporaryDirectory(prefix="extsvc-wheel-") as temporary:
        source = Path(temporary)
        for name in ("pyproject.toml", "README.md", "extsvc", *PACKAGE_FOLDERS, "oci-schemas"):
            if (REPO / name).is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
            else:
                shutil.copy2(REPO / name, source / name)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "-w", str(into), str(source)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    (wheel,) = into.glob("extsvc-*.whl")
    return wheel
