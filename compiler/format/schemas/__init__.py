"""The JSON Schemas shipped with extsvc (the files in this folder), by kind, and their validators.

One schema per kind of document extsvc reads or writes. They are plain files
beside this module in every install (wheel or editable checkout), read through
``__file__`` rather than ``importlib.resources``, whose import alone costs
~5 ms of the start-up budget of ``extsvc validate``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from extsvc.compiler.format.schemacheck import Validator, compile_schema

SCHEMAS_DIR = Path(__file__).parent

# kind -> file name; the kinds `extsvc schema --kind` prints.
SCHEMA_FILES = {
    "service": "service.schema.json",
    "config": "config.schema.json",
    "host-services": "host-services.schema.json",
    "plan": "plan.schema.json",
    "diff": "diff.schema.json",
    "facts": "facts.schema.json",
}


@cache
def schema(kind: str) -> dict[str, Any]:
    """The parsed schema of ``kind`` (shared: do not modify the result)."""
    data: dict[str, Any] = json.loads((SCHEMAS_DIR / SCHEMA_FILES[kind]).read_text("utf-8"))
    return data


def schema_text(kind: str) -> str:
    return (SCHEMAS_DIR / SCHEMA_FILES[kind]).read_text("utf-8")


@cache
def validator(kind: str) -> Validator:
    return compile_schema(schema(kind))
