"""payments' rules: pure functions and state machines, no I/O, no HTTP errors.

One module per resource (the same names as ``api``, ``schemas`` and ``service``):
``remittances`` (the plan's arithmetic and the transfers), ``settlements`` (兑付 claims) and
``refunds`` (after a termination). A refused step raises :class:`Refusal` with a stable code;
``payments.errors`` turns it into the problem the client sees.
"""

from __future__ import annotations


class Refusal(Exception):
    """A rule refused a step; ``code`` is the stable problem code (see payments.errors)."""

    def __init__(self, code: str, **facts: object) -> None:
        super().__init__(code)
        self.code = code
        self.facts = facts
