"""Rules as pure functions (no I/O, no HTTP), one module per resource: auth, organizations,
verifications, files, admin."""
