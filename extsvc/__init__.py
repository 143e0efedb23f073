"""extsvc: Talos extension services on any Linux image.

The installed distribution has exactly one top-level import name, this one:
``extsvc.compiler`` (YAML -> OCI bundles + plan), ``extsvc.executor`` (plan ->
runc), ``extsvc.entry`` and ``extsvc.cli`` (the ``extsvc`` command, a dispatcher
only: `run` bypasses click, see entry).
"""

__version__ = "0.1.0"
