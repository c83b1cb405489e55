"""payments' own invariants (DESIGN.md "Invariants"): the one copy of them, as pure functions
over payments' rows, each finding naming the ids involved.

At every quiescent point, per order:
- ``paid + pending <= payable``, ``deposit + balance = payable``, ``payable = total - subsidy``
  (also CHECK constraints); nothing negative;
- the plan's ``paid`` is the sum of its confirmed remittances, ``pending`` of its pending ones,
  and no remittance is on an order without a plan;
- a terminated plan owes back every confirmed remittance, once and of the same amount; no
  other refund exists;
- a settlement is for the plan's subsidy, and one on a terminated plan is paid or cancelled.

The functions take any rows with the models' attribute names (``payments.models``, or the
rows ``voucher-invariants`` reads with SQL). ``voucher-payments check-invariants`` runs
:func:`broken` on payments' database; the platform's ``voucher-invariants`` runs the same
functions over what it read (with its checks across the services).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from payments.domain.remittances import PlanState, RemittanceState
from payments.domain.settlements import SettlementState
from payments.models import PaymentPlan, Refund, Remittance, SettlementClaim


@dataclass(frozen=True)
class Finding:
    code: str  # stable, snake_case: which invariant
    message: str
    ids: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.ids.items())
        return f"[{self.code}] {self.message}" + (f" ({where})" if where else "")


class PlanRow(Protocol):
    @property
    def order_id(self) -> str: ...
    @property
    def contract_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def total_fen(self) -> int: ...
    @property
    def subsidy_fen(self) -> int: ...
    @property
    def payable_fen(self) -> int: ...
    @property
    def deposit_fen(self) -> int: ...
    @property
    def balance_fen(self) -> int: ...
    @property
    def paid_fen(self) -> int: ...
    @property
    def pending_fen(self) -> int: ...


class MoneyRow(Protocol):
    """A remittance, a settlement claim or a refund."""

    @property
    def id(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def amount_fen(self) -> int: ...
    @property
    def state(self) -> str: ...


class RefundRow(MoneyRow, Protocol):
    @property
    def remittance_id(self) -> str: ...


def plan_money(plans: Sequence[PlanRow], remittances: Iterable[MoneyRow]) -> list[Finding]:
    """confirmed + pending payments <= payable; the plan's paid and pending are its
    remittances'; deposit + balance = payable = total - subsidy."""
    out: list[Finding] = []
    confirmed: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    for m in remittances:
        if m.state == RemittanceState.CONFIRMED:
            confirmed[m.order_id] += m.amount_fen
        elif m.state == RemittanceState.PENDING:
            pending[m.order_id] += m.amount_fen
    for p in plans:
        ids = {"order": p.order_id, "contract": p.contract_id}
        if p.paid_fen < 0 or p.pending_fen < 0:
            out.append(Finding("plan_negative", f"paid {p.paid_fen}, pending {p.pending_fen}", ids))
        if p.paid_fen + p.pending_fen > p.payable_fen:
            out.append(
                Finding(
                    "plan_overpaid",
                    f"paid {p.paid_fen} + pending {p.pending_fen} > payable {p.payable_fen}",
                    ids,
                )
            )
        if confirmed[p.order_id] + pending[p.order_id] > p.payable_fen:
            out.append(
                Finding(
                    "remittances_over_payable",
                    f"confirmed {confirmed[p.order_id]} + pending {pending[p.order_id]} > payable {p.payable_fen}",
                    ids,
                )
            )
        if p.paid_fen != confirmed[p.order_id]:
            out.append(
                Finding(
                    "plan_paid_vs_remittances",
                    f"paid {p.paid_fen} != confirmed remittances {confirmed[p.order_id]}",
                    ids,
                )
            )
        if p.pending_fen != pending[p.order_id]:
            out.append(
                Finding(
                    "plan_pending_vs_remittances",
                    f"pending {p.pending_fen} != pending remittances {pending[p.order_id]}",
                    ids,
                )
            )
        if p.deposit_fen + p.balance_fen != p.payable_fen:
            out.append(
                Finding(
                    "plan_stages",
                    f"deposit {p.deposit_fen} + balance {p.balance_fen} != payable {p.payable_fen}",
                    ids,
                )
            )
        if p.payable_fen != p.total_fen - p.subsidy_fen:
            out.append(
                Finding(
                    "plan_payable",
                    f"payable {p.payable_fen} != total {p.total_fen} - subsidy {p.subsidy_fen}",
                    ids,
                )
            )
    for order_id in sorted((set(confirmed) | set(pending)) - {p.order_id for p in plans}):
        out.append(
            Finding(
                "remittance_without_plan", "remittances on an order with no payment plan", {"order": order_id}
            )
        )
    return out


def refunds(
    plans: Iterable[PlanRow], remittances: Iterable[MoneyRow], refunds: Sequence[RefundRow]
) -> list[Finding]:
    """A terminated plan owes back every confirmed remittance, once; no other refund exists."""
    out: list[Finding] = []
    by_order = {p.order_id: p for p in plans}
    by_id = {m.id: m for m in remittances}
    by_remittance: dict[str, list[str]] = defaultdict(list)
    for f in refunds:
        by_remittance[f.remittance_id].append(f.id)
    for f in refunds:
        ids = {"order": f.order_id, "refund": f.id, "remittance": f.remittance_id}
        m = by_id.get(f.remittance_id)
        p = by_order.get(f.order_id)
        if p is None or p.state != PlanState.TERMINATED:
            out.append(
                Finding(
                    "refund_without_termination", "a refund for an order whose plan is not terminated", ids
                )
            )
        if (
            m is None
            or m.state != RemittanceState.CONFIRMED
            or m.amount_fen != f.amount_fen
            or m.order_id != f.order_id
        ):
            out.append(
                Finding(
                    "refund_vs_remittance",
                    f"refund of {f.amount_fen} does not match a confirmed remittance of its order",
                    ids,
                )
            )
    for m in by_id.values():
        p = by_order.get(m.order_id)
        if (
            p is not None
            and p.state == PlanState.TERMINATED
            and m.state == RemittanceState.CONFIRMED
            and not by_remittance.get(m.id)
        ):
            out.append(
                Finding(
                    "refund_missing",
                    f"confirmed remittance of {m.amount_fen} on a terminated plan has no refund",
                    {"order": m.order_id, "remittance": m.id},
                )
            )
    for remittance_id, found in by_remittance.items():
        if len(found) > 1:
            out.append(
                Finding(
                    "refund_twice", f"{len(found)} refunds for one remittance", {"remittance": remittance_id}
                )
            )
    return out


def settlements(plans: Iterable[PlanRow], claims: Iterable[MoneyRow]) -> list[Finding]:
    """A settlement is for its plan's subsidy; one on a terminated plan is paid or cancelled."""
    out: list[Finding] = []
    by_order = {p.order_id: p for p in plans}
    for cl in claims:
        p = by_order.get(cl.order_id)
        ids = {"order": cl.order_id, "claim": cl.id}
        if p is None or cl.amount_fen != p.subsidy_fen:
            out.append(
                Finding(
                    "settlement_vs_plan",
                    f"claim of {cl.amount_fen} but the plan's subsidy is {p.subsidy_fen if p else 'absent'}",
                    ids,
                )
            )
        if (
            p is not None
            and p.state == PlanState.TERMINATED
            and cl.state
            not in (
                SettlementState.PAID,
                SettlementState.CANCELLED,
            )
        ):
            out.append(
                Finding("settlement_of_terminated_plan", f"claim {cl.state} on a terminated plan", ids)
            )
    return out


def check(
    plans: Sequence[PlanRow],
    remittances: Sequence[MoneyRow],
    claims: Sequence[MoneyRow],
    refund_rows: Sequence[RefundRow],
) -> list[Finding]:
    """Every invariant of payments' own rows."""
    return [
        *plan_money(plans, remittances),
        *settlements(plans, claims),
        *refunds(plans, remittances, refund_rows),
    ]


async def broken(session: AsyncSession) -> list[Finding]:
    """Every broken invariant of payments' database with the ids involved (empty when all hold)."""
    plans = (await session.exec(select(PaymentPlan).order_by(col(PaymentPlan.order_id)))).all()
    remittances = (await session.exec(select(Remittance).order_by(col(Remittance.id)))).all()
    claims = (await session.exec(select(SettlementClaim).order_by(col(SettlementClaim.id)))).all()
    refund_rows = (await session.exec(select(Refund).order_by(col(Refund.id)))).all()
    return check(plans, remittances, claims, refund_rows)
