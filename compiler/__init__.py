"""extsvc compiler: extension-service YAML -> OCI bundles + plan (see DESIGN §2-§5)."""
