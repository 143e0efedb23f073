"""extsvc compiler: extension-service YAML -> OCI bundles + plan (see DESIGN §2-§5)."""

__version__ = "0.1.0"
