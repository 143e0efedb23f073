"""Exit codes of every `extsvc` command, shared by the compiler's and the executor's."""

EXIT_OK = 0
EXIT_INVALID_INPUT = 1  # diagnostics printed; nothing written
EXIT_USAGE = 2
# No runc, not root, no overlayfs, a file it may not read or write: the message says the fix.
EXIT_ENVIRONMENT = 3
# `extsvc diff` follows diff(1) instead: 0 same, 1 changed, 2 trouble (usage, a side it
# cannot read or compile); a permission denied is EXIT_ENVIRONMENT there too.
EXIT_DIFF_CHANGED = 1
EXIT_DIFF_TROUBLE = 2


def permission_denied(command: str, error: PermissionError) -> str:
    """What ``command`` says, with EXIT_ENVIRONMENT, when it lacks the rights to a file."""
    where = error.filename if error.filename is not None else error
    return f"{command}: permission denied: {where} (run it as a user allowed there, or with sudo)"
