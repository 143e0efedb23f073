"""Canonical JSON: the one encoding of every JSON file compile writes.

UTF-8, sorted keys, 2-space indent, one trailing newline, nothing escaped that need
not be: the same value always gives the same bytes, so goldens and ``extsvc diff``
are exact and the plan can pin each config.json by the digest of these bytes (which is
why ``build`` needs them before ``render`` runs).
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
