"""服务券兑付: the settlement claim of one completed order, for its committed subsidy.

    open --claim--> claimed --approve--> approved --pay--> paid
                       |
                       +--reject--> rejected --claim--> claimed   (a rejected claim may be
                                                                   made again, with new files)
    open | claimed | approved | rejected --cancel (termination)--> cancelled

Decided here: a rejection is not the end. Finance rejects a claim for its documents (a wrong
invoice, an unreadable receipt); the subsidy is still owed for a service that was delivered,
so the provider corrects the documents and claims again. Only a termination cancels a claim,
and a paid claim is never cancelled (a settled subsidy is not clawed back by the software).
"""

from __future__ import annotations

from enum import StrEnum

from common.rules import Refusal


class SettlementState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


LABELS = {
    SettlementState.OPEN: "待申请兑付",
    SettlementState.CLAIMED: "待审核",
    SettlementState.APPROVED: "审核通过",
    SettlementState.PAID: "已兑付",
    SettlementState.REJECTED: "审核不通过",
    SettlementState.CANCELLED: "已取消",
}

S = SettlementState

# action -> (the states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[S], S]] = {
    "claim": (frozenset({S.OPEN, S.REJECTED}), S.CLAIMED),
    "approve": (frozenset({S.CLAIMED}), S.APPROVED),
    "reject": (frozenset({S.CLAIMED}), S.REJECTED),
    "pay": (frozenset({S.APPROVED}), S.PAID),
    "cancel": (frozenset({S.OPEN, S.CLAIMED, S.APPROVED, S.REJECTED}), S.CANCELLED),
}


def refusal_code(action: str, state: S) -> str:
    if state == S.CANCELLED:
        return "settlement_cancelled"
    if state == S.PAID:
        return "settlement_already_paid"
    if action == "claim":
        return "settlement_already_claimed"
    if action == "pay":
        return "settlement_not_approved"
    return "settlement_not_claimed"


def transition(state: str, action: str) -> S:
    """The state after ``action``, or a :class:`Refusal` with the reason's code."""
    sources, target = TRANSITIONS[action]
    current = S(state)
    if current not in sources:
        raise Refusal(refusal_code(action, current), state=current.value)
    return target


def actions(state: str, *, provider: bool, finance: bool) -> list[str]:
    """What the caller may do now (shown on list items)."""
    current = S(state)
    out: list[str] = []
    for action, (sources, _target) in TRANSITIONS.items():
        if action == "cancel" or current not in sources:
            continue
        if (action == "claim" and provider) or (action != "claim" and finance):
            out.append(action)
    return out
