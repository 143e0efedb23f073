"""Validate: check a loaded service file against the input JSON Schema, as diagnostics.

The schema (``compiler/format/schemas/service.schema.json``) is the single statement
of the format: ``extsvc schema`` prints it for editors and this module checks
it. How its errors read (what a dependency must name, what a path must look
like) is written in the schema too (``x-errors``), and turned into diagnostics by
``compiler.format.schemadiag``, the same path every other input takes.
"""

from __future__ import annotations

from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic
from extsvc.compiler.format.load import LoadedDocument
from extsvc.compiler.format.schemadiag import check_document


def validate_document(document: LoadedDocument) -> tuple[Any, list[Diagnostic]]:
    """The tree as Talos reads it (None unless a mapping), and every schema problem; what
    Talos reads leniently (``restart: Always``, ``logToConsole: yes``...) is a warning."""
    return check_document("service", document, lenient=True)
