"""The payment plan's arithmetic and the remittances (对公转账) that fill it.

A plan is made once, when the contract is signed: ``payable = total - subsidy`` (实付金额),
``deposit + balance = payable`` (合同定金 + 合同尾款). The enterprise records each transfer it
made (installments allowed: 支持根据双方商谈的付款方式分次向服务机构汇款); a recorded transfer is
``pending`` until the payee provider or finance confirm it (到账核实) or reject it. Only a
confirmation counts as paid. What is recorded but not yet decided still takes room, so
``paid + pending`` never exceeds ``payable``: an enterprise cannot announce more than it owes,
and two transfers recorded at once cannot both take the last fen.

Plan states: ``open`` (money still owed), ``closed`` (fully paid, or nothing to pay),
``terminated`` (the contract was terminated: no new transfer is recorded; one recorded before
stays decidable, since the enterprise may have sent the money: confirmed, it is owed back).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from common.rules import Refusal


class PlanState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    TERMINATED = "terminated"


PLAN_LABELS = {PlanState.OPEN: "待支付", PlanState.CLOSED: "已付清", PlanState.TERMINATED: "合同已终止"}


class RemittanceState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


REMITTANCE_LABELS = {
    RemittanceState.PENDING: "待核实",
    RemittanceState.CONFIRMED: "已到账",
    RemittanceState.REJECTED: "已驳回",
}

DEPOSIT_LABEL = "合同定金"
BALANCE_LABEL = "合同尾款"


@dataclass(frozen=True)
class Figures:
    """What a plan holds, in fen; every other figure follows from these five."""

    payable_fen: int
    deposit_fen: int
    balance_fen: int
    paid_fen: int = 0  # confirmed
    pending_fen: int = 0  # recorded, not yet confirmed or rejected

    @property
    def outstanding_fen(self) -> int:
        """Still owed: not yet confirmed as received."""
        return self.payable_fen - self.paid_fen

    @property
    def room_fen(self) -> int:
        """What the enterprise may still record: owed and not already announced."""
        return self.payable_fen - self.paid_fen - self.pending_fen

    @property
    def deposit_met(self) -> bool:
        return self.paid_fen >= self.deposit_fen

    @property
    def fully_paid(self) -> bool:
        return self.paid_fen >= self.payable_fen

    @property
    def stage(self) -> str | None:
        """The stage the next transfer pays: the deposit until it is met, then the balance."""
        if self.fully_paid:
            return None
        return DEPOSIT_LABEL if not self.deposit_met else BALANCE_LABEL

    @property
    def suggested_fen(self) -> int:
        """汇款金额 the payment screen proposes: the rest of the current stage not yet
        announced (the deposit first, as the manual shows ``8 合同定金``), within the room."""
        if self.room_fen <= 0:
            return 0
        if not self.deposit_met:
            rest_of_deposit = self.deposit_fen - self.paid_fen - self.pending_fen
            if rest_of_deposit > 0:
                return min(rest_of_deposit, self.room_fen)
        return self.room_fen


def new_plan(
    *, total_fen: int, subsidy_fen: int, payable_fen: int, deposit_fen: int, balance_fen: int
) -> Figures:
    """The plan of a signed contract; its figures must add up (else the event is malformed)."""
    if min(total_fen, subsidy_fen, payable_fen, deposit_fen, balance_fen) < 0:
        raise ValueError("a contract amount is negative")
    if payable_fen != total_fen - subsidy_fen:
        raise ValueError(f"payable {payable_fen} != total {total_fen} - subsidy {subsidy_fen}")
    if deposit_fen + balance_fen != payable_fen:
        raise ValueError(f"deposit {deposit_fen} + balance {balance_fen} != payable {payable_fen}")
    return Figures(payable_fen, deposit_fen, balance_fen)


def state_after(figures: Figures) -> PlanState:
    """A plan with nothing left to receive is closed (payable 0 is closed at signing)."""
    return PlanState.CLOSED if figures.fully_paid else PlanState.OPEN


def record(figures: Figures, state: str, amount_fen: int) -> Figures:
    """A transfer the enterprise announces: it takes room until it is decided."""
    if state == PlanState.TERMINATED:
        raise Refusal("contract_terminated")
    if amount_fen <= 0:
        raise Refusal("amount_not_positive")
    if figures.fully_paid:
        raise Refusal("already_fully_paid")
    if state == PlanState.CLOSED:  # closed without being paid: its contract was voided
        raise Refusal("plan_closed")
    if amount_fen > figures.room_fen:
        raise Refusal("remittance_exceeds_outstanding", room_fen=figures.room_fen)
    return replace(figures, pending_fen=figures.pending_fen + amount_fen)


def decide(
    figures: Figures, plan_state: str, remittance_state: str, amount_fen: int, *, confirm: bool
) -> Figures:
    """到账核实: a pending transfer is confirmed (it counts as paid) or rejected (its room
    is given back); each transfer is decided once, also after a termination (the money the
    enterprise says it sent must not vanish: confirmed then, it is owed back)."""
    if remittance_state != RemittanceState.PENDING:
        raise Refusal("remittance_not_pending", state=remittance_state)
    pending = figures.pending_fen - amount_fen
    if pending < 0:  # the plan and its remittances disagree: never apply it
        raise ValueError("pending would go negative")
    if confirm:
        return replace(figures, pending_fen=pending, paid_fen=figures.paid_fen + amount_fen)
    return replace(figures, pending_fen=pending)
