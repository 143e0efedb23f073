"""Containers: the runtime contract, runc, bundles, overlays, cgroups, host adaptation,
leftovers.
"""
