"""The data files shipped with the compiler: seccomp profiles and the OCI schemas.

They are plain files beside the modules in every install (a wheel or an
editable checkout), so they are found from ``__file__`` rather than through
``importlib.resources``, whose import (tempfile, inspect) alone costs ~5 ms:
a sixth of what ``extsvc validate`` may spend beyond ``import yaml, click``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SECCOMP_DIR = Path(__file__).parent / "seccomp"


def oci_schemas_dir() -> Path:
    """The vendored oci-schemas/ folder, installed as the data package ``extsvc.oci_schemas``."""
    from importlib.util import find_spec

    spec = find_spec("extsvc.oci_schemas")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the oci_schemas data package is not installed (pip install extsvc)"
        )
    return Path(spec.origin).parent


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data
