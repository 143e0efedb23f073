"""Exit codes of every `extsvc` command (DESIGN §7), shared by the compiler's and the executor's."""

EXIT_OK = 0
EXIT_INVALID_INPUT = 1  # diagnostics printed; nothing written
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3  # no runc, not root, no overlayfs: the message says the fix
