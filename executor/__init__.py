"""extsvc executor: runs a compiled plan through runc (see DESIGN §6)."""
