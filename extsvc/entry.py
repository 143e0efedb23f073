"""The `extsvc` program's first instructions.

`extsvc run` goes straight to the executor's own parser (executor.cli.run): boot
must not wait for click to be imported. Every other command goes through the
click dispatcher (extsvc.cli), which lists `run` too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> Any:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["run"]:
        from extsvc.executor.cli.run import main as run

        return run(arguments[1:])
    from extsvc.cli import main as dispatch

    return dispatch(arguments)
