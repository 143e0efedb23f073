"""The review tools: what a compiled output says, and what changed between two.

``diff`` (two outputs -> privilege-classified changes) and ``diffreport`` (those
changes as text or JSON), ``explain`` (each field of a config.json and where it came
from), ``outputs`` (a side as read from OUT, compiled in memory or taken from git) and
``hazards`` (what could keep a valid set waiting forever at boot, for ``validate``).

Nothing is imported here: ``extsvc validate`` imports ``hazards`` alone and must not
pay for the others.
"""
