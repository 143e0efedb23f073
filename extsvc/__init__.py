"""extsvc: Talos extension services on any Linux image.

The installed distribution has exactly one top-level import name, this one:
``extsvc.compiler`` (YAML -> OCI bundles + plan), ``extsvc.executor`` (plan ->
runc), ``extsvc.entry`` and ``extsvc.cli`` (the ``extsvc`` command, a dispatcher
only: `run` bypasses click, see entry).
"""

# The version, written here only: the distribution's metadata (pyproject.toml), `extsvc
# --version` and the compiler's stamp in plan.json read it.
__version__ = "0.1.0"
