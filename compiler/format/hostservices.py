"""The host-services file, checked: shared by `extsvc run` (its rules) and `extsvc validate`
(which host services have a rule at all, for the boot-hazard warnings).

The same loader, schema path and wording as service files (``extsvc schema
--kind host-services``); what each rule means at run time is the executor's
(``executor.host.readiness``).
"""

from __future__ import annotations

from typing import Any

from extsvc.compiler.format.diagnostics import Diagnostic, sort_key
from extsvc.compiler.format.load import iter_documents
from extsvc.compiler.format.schemadiag import check_document


def check_host_services(file: str, data: bytes) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """Load and check a host-services file. An empty file has no rules."""
    documents = list(iter_documents(file, data))
    document, problems = documents[0] if documents else (None, [])
    if document is None or problems:
        return None, problems
    if document.tree is None:
        return {}, []
    # A rule written as `cri:` with nothing is a mistake, not an absent key.
    tree, problems = check_document("host-services", document, nulls_absent=False)
    return tree, sorted(problems, key=sort_key)
