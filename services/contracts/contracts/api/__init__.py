"""Public routers, one module per resource: thin (deps -> service -> one commit -> Out)."""
