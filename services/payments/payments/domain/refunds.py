"""Refunds after a termination: every confirmed remittance of a terminated plan is owed back
to the enterprise (``due``) until finance records the bank reference of the refund
(``refunded``). Nothing else moves a refund."""

from __future__ import annotations

from enum import StrEnum

from common.rules import Refusal


class RefundState(StrEnum):
    DUE = "due"
    REFUNDED = "refunded"


LABELS = {RefundState.DUE: "待退款", RefundState.REFUNDED: "已退款"}


def mark_refunded(state: str) -> RefundState:
    if state != RefundState.DUE:
        raise Refusal("refund_already_refunded")
    return RefundState.REFUNDED
