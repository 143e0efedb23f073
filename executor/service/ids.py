"""Service ids as a person types them: ``ext-web`` or just ``web``."""

from __future__ import annotations

from typing import Any

from extsvc.compiler.format.serviceids import EXTENSION_ID_PREFIX
from extsvc.executor.errors import UnknownServiceError


def resolve_id(given: str, known: dict[str, Any] | list[str]) -> str:
    """``given`` as a known id: exact, or a bare name behind ``ext-``; else an error
    that suggests the closest ids ("did you mean")."""
    if given in known:
        return given
    if not given.startswith(EXTENSION_ID_PREFIX) and EXTENSION_ID_PREFIX + given in known:
        return EXTENSION_ID_PREFIX + given
    import difflib  # only an unknown id pays for it

    close = difflib.get_close_matches(given, list(known), n=3, cutoff=0.6)
    prefixed = difflib.get_close_matches(EXTENSION_ID_PREFIX + given, list(known), n=3)
    close += [c for c in prefixed if c not in close]
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close[:3])}?"
    else:
        hint = f"services: {', '.join(sorted(known)) or 'none'}"
    raise UnknownServiceError(f"unknown service {given!r} ({hint})")
