"""quota's rules: pure functions, no I/O, no HTTP errors; one module per resource, with the
names of ``api``, ``schemas`` and ``service``: ``campaigns`` (the manual's figures and texts,
the windows), ``applications`` (tiers, special-type requests, approvals), ``vouchers`` (the
subsidy, the reservation decision, what the quota screen shows, expiry), ``designations``
(the lists' rows) and ``caps`` (providers' caps). The journal's arithmetic is
:mod:`quota.ledger` (the auditor, ``voucher-invariants``, reads it too)."""
