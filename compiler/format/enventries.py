"""Environment entries (``KEY=VALUE``): the one rule for an entry without ``=``.

Talos hands a service's ``container.environment`` and an ExtensionServiceConfig's
``environment`` to containerd, whose WithEnv reads an entry without ``=`` as "unset
this variable": the container never sees it. extsvc drops such an entry where a spec
is built (compiler.oci, extconfig.configure_spec, the origins of compiler.build) and
warns where it is read (compiler.rules, extconfig). A line without ``=`` in an
environment file is an error instead, as go-envparse has it (envfile).
"""

from __future__ import annotations

from collections.abc import Iterable

# How a warning about such an entry ends (compiler.rules, extconfig).
DROPPED = "Talos drops it"


def is_dropped(entry: str) -> bool:
    """An entry without '=': never passed to the container."""
    return "=" not in entry


def kept(entries: Iterable[str]) -> list[str]:
    """``entries`` as the container gets them: in order, duplicates kept, the dropped
    ones left out."""
    return [entry for entry in entries if not is_dropped(entry)]
