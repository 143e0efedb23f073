"""Vendored OCI runtime-spec v1.3.0 JSON schemas (data only; see SOURCE and LICENSE)."""
