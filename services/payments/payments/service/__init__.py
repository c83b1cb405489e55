"""Operations on a session: lock, apply the domain, audit, add outbox events. Never commits
(the route or the consumer commits once). One module per resource.

Lock order, everywhere: the order's plan row first (the aggregate), then the remittance,
settlement or refund row; so a termination and a confirmation of the same order never
deadlock, and whoever comes second decides on what the first committed.
"""

from __future__ import annotations

from common.auth import MEMBER_ROLES, Principal


def is_member_of(principal: Principal, org_id: str | None) -> bool:
    return principal.role in MEMBER_ROLES and principal.org_id is not None and principal.org_id == org_id


def is_finance(principal: Principal) -> bool:
    return principal.has_role("finance")
