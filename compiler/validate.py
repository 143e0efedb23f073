"""Validate: check a loaded service file against the input JSON Schema, as diagnostics.

The schema (``compiler/format/schemas/service.schema.json``) is the single statement
of the format: ``extsvc schema`` prints it for editors and this module checks
it. How its errors read (what a dependency must name, what a path must look
like) is written in the schema too (``x-errors``), and turned into diagnostics by
``compiler.format.schemadiag``, the same path every other input takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic
from extsvc.compiler.format.load import LoadedDocument
from extsvc.compiler.format.schemacheck import SchemaError
from extsvc.compiler.format.schemadiag import check_document, drop_nulls
from extsvc.compiler.format.schemadiag import iter_schema_errors as _iter_schema_errors
from extsvc.compiler.format.schemas import schema

__all__ = ["drop_nulls", "iter_schema_errors", "service_schema", "validate_document"]


def service_schema() -> dict[str, Any]:
    return schema("service")


def validate_document(document: LoadedDocument) -> tuple[Any, list[Diagnostic]]:
    """The tree as Talos reads it (None unless a mapping), and every schema problem; what
    Talos reads leniently (``restart: Always``, ``logToConsole: yes``...) is a warning."""
    return check_document("service", document, lenient=True)


def iter_schema_errors(tree: Any) -> Iterator[SchemaError]:
    """Raw schema errors (for tests that compare with the jsonschema oracle)."""
    return _iter_schema_errors("service", tree)
