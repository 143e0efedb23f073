"""What the extension commands raise: one message a user can act on, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence

from extsvc.compiler.format.diagnostics import Diagnostic


class ExtensionError(Exception):
    """An image or an install that is refused; nothing was written (or it was undone)."""


class ManifestError(ExtensionError):
    """``manifest.yaml`` is invalid: located diagnostics to print."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__("; ".join(d.headline() for d in diagnostics))
        self.diagnostics = tuple(diagnostics)
