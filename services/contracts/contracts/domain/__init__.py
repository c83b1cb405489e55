"""contracts' rules as pure functions (no I/O, no HTTP errors), one module per resource."""
