"""Exit codes of every `extsvc` command (DESIGN §7), shared by the compiler's and the executor's."""

EXIT_OK = 0
EXIT_INVALID_INPUT = 1  # diagnostics printed; nothing written
EXIT_USAGE = 2
EXIT_ENVIRONMENT = (
    3  # no runc, not root, no overlayfs, a file it may not read: the message says the fix
)


def permission_denied(command: str, error: PermissionError) -> str:
    """What ``command`` says, with EXIT_ENVIRONMENT, when it lacks the rights to a file."""
    where = error.filename if error.filename is not None else error
    return f"{command}: permission denied: {where} (run it as a user allowed there, or with sudo)"
