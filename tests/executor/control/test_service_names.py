"""Control commands take a bare service name, and suggest a known id for an unknown one (fake
runtime)."""

from __future__ import annotations

import pytest

from extsvc.executor.errors import UnknownServiceError
from extsvc.executor.service.ids import resolve_id


def test_bare_names_resolve_and_unknown_ids_suggest() -> None:
    known = ["ext-hello-world", "ext-greeter"]
    assert resolve_id("hello-world", known) == "ext-hello-world"
    assert resolve_id("ext-greeter", known) == "ext-greeter"
    with pytest.raises(UnknownServiceError, match="did you mean 'ext-hello-world'"):
        resolve_id("helo-world", known)
    with pytest.raises(UnknownServiceError, match="services: ext-greeter, ext-hello-world"):
        resolve_id("zzz", known)
