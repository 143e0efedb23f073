"""What a test does when it cannot run here: skip on a developer machine, fail under CI.

CI must prove that the containers really run: under ``CI=true`` a missing runc, root
or rig is a failure, never a skip.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def cannot_run(reason: str, what: str = "this test") -> None:
    """Skip on a developer machine; fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true but {what} cannot run: {reason}", pytrace=False)
    pytest.skip(reason)
