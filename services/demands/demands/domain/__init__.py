"""demands' rules: pure functions and state machines, no I/O, no HTTP errors.

One module per resource (the same names as ``api``, ``schemas`` and ``service``):
``demands`` (需求 and 我要对接), ``messages`` (我要留言) and ``notices`` (the portal's policy
documents). A refused step raises ``common.rules.Refusal`` with a stable code;
``demands.errors.from_refusal`` turns it into the problem the client sees.
"""
