"""extsvc compiler: extension-service YAML -> OCI bundles + plan.

Its stages and layers: README.md, "How it is built".
"""
