"""payments' rules: pure functions and state machines, no I/O, no HTTP errors.

One module per resource (the same names as ``api``, ``schemas`` and ``service``):
``remittances`` (the plan's arithmetic and the transfers), ``settlements`` (兑付 claims) and
``refunds`` (after a termination). A refused step raises ``common.rules.Refusal`` with a stable
code; ``payments.errors.from_refusal`` turns it into the problem the client sees.
"""
