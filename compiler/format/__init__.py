"""The contract between the compiler and the executor, in one place.

What both halves read or write lives here and nowhere else: the YAML loader
(``load``) and the source positions it records (``sourcemap``), diagnostics and
their rendering (``diagnostics``), the JSON Schemas of every input and output
(``schemas``), the one validator that checks them (``schemacheck``), the wording
of their errors (``schemadiag``) and Talos's lenient reading of a service file
(``leniency``), the plan format (``plan``; its service ids in the light
``serviceids``, how each service is run in ``servicepolicy``), the capability table
(``capabilities``), durations and sizes (``quantities``) and the rule for an
environment entry without ``=`` (``enventries``).

``extsvc.executor`` may import this subpackage and nothing else of
``extsvc.compiler``; ``make lint`` checks that rule (import-linter contracts in pyproject.toml).
"""
