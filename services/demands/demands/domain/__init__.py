"""demands' rules: pure functions and state machines, no I/O, no HTTP errors.

One module per resource (the same names as ``api``, ``schemas`` and ``service``):
``demands`` (需求 and 我要对接), ``messages`` (我要留言) and ``notices`` (the portal's policy
documents). A refused step raises :class:`Refusal` with a stable code; ``demands.errors``
turns it into the problem the client sees.
"""

from __future__ import annotations


class Refusal(Exception):
    """A rule refused a step; ``code`` is the stable problem code (see demands.errors)."""

    def __init__(self, code: str, **facts: object) -> None:
        super().__init__(code)
        self.code = code
        self.facts = facts
