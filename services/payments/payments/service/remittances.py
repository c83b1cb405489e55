"""Plans (from the signed contract) and remittances (对公转账) with their verification."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal, forbidden_role
from common.bus import emit
from common.db import lock
from common.events import ContractSigned, PaymentReceived, RemittanceRecorded, RemittanceRejected
from common.orgs import OrgCopy
from common.rules import Refusal
from common.timers import utcnow
from payments import errors
from payments.domain import remittances as rules
from payments.domain.terminations import held
from payments.models import Payee, PaymentPlan, Refund, Remittance
from payments.schemas.refunds import RefundOut
from payments.schemas.remittances import PayeeOut, PaymentOut, RemittanceIn, RemittanceOut
from payments.service import is_finance, is_member_of, refunds

log = structlog.get_logger(__name__)


def figures(plan: PaymentPlan) -> rules.Figures:
    return rules.Figures(
        plan.payable_fen, plan.deposit_fen, plan.balance_fen, plan.paid_fen, plan.pending_fen
    )


def apply(plan: PaymentPlan, f: rules.Figures) -> None:
    plan.paid_fen, plan.pending_fen = f.paid_fen, f.pending_fen
    if plan.state != rules.PlanState.TERMINATED:
        plan.state = rules.state_after(f).value
    plan.updated_at = utcnow()


# --- the plan ----------------------------------------------------------------------------------


async def _copied_name(session: AsyncSession, org_id: str) -> str:
    """An organisation's name from payments' copy: for a signing announced before the event
    carried the parties' names. Only shown on staff lists, never decided on."""
    copy = await session.get(OrgCopy, org_id)
    return copy.name if copy else ""


async def create_plan(session: AsyncSession, p: ContractSigned) -> bool:
    """The plan of a signed contract, once per order (a second delivery changes nothing).
    A payable of 0 is closed at once and publishes nothing: orders knows from the signing."""
    f = rules.new_plan(
        total_fen=p.total_fen,
        subsidy_fen=p.subsidy_fen,
        payable_fen=p.payable_fen,
        deposit_fen=p.deposit_fen,
        balance_fen=p.balance_fen,
    )
    made = await session.execute(
        pg_insert(PaymentPlan)
        .values(
            order_id=p.order_id,
            order_no=p.order_no,
            contract_id=p.contract_id,
            enterprise_id=p.enterprise_id,
            provider_id=p.provider_id,
            enterprise_name=p.enterprise_name or await _copied_name(session, p.enterprise_id),
            provider_name=p.provider_name or await _copied_name(session, p.provider_id),
            product_name=p.product_name,
            total_fen=p.total_fen,
            subsidy_fen=p.subsidy_fen,
            payable_fen=p.payable_fen,
            deposit_fen=p.deposit_fen,
            balance_fen=p.balance_fen,
            paid_fen=0,
            pending_fen=0,
            state=rules.state_after(f).value,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(col(PaymentPlan.order_id))
    )
    return made.first() is not None


async def payee_of(session: AsyncSession, provider_id: str) -> Payee | None:
    payee = await session.get(Payee, provider_id)
    return payee if payee is not None and payee.account_number else None


async def remittances_of(session: AsyncSession, order_id: str) -> list[Remittance]:
    rows = await session.exec(
        select(Remittance)
        .where(col(Remittance.order_id) == order_id)
        .order_by(col(Remittance.created_at), col(Remittance.id))
    )
    return list(rows.all())


def plan_actions(plan: PaymentPlan, principal: Principal, f: rules.Figures, payee: Payee | None) -> list[str]:
    """支付 (remit) while money is owed to a payee with a receiving account; 到账核实 while a
    transfer waits, also after a termination."""
    actions: list[str] = []
    owed = plan.state == rules.PlanState.OPEN and f.room_fen > 0 and payee is not None
    owed = owed and not held(plan.termination_request_id, plan.state)
    if owed and is_member_of(principal, plan.enterprise_id):
        actions.append("remit")
    if f.pending_fen > 0:
        if is_member_of(principal, plan.provider_id) or is_finance(principal):
            actions += ["confirm", "reject"]
    return actions


async def payment_view(session: AsyncSession, plan: PaymentPlan, principal: Principal) -> PaymentOut:
    f = figures(plan)
    payee = await payee_of(session, plan.provider_id)
    remittances = await remittances_of(session, plan.order_id)
    refunds = await session.exec(
        select(Refund).where(col(Refund.order_id) == plan.order_id).order_by(col(Refund.created_at))
    )
    return PaymentOut.model_validate(
        {
            **plan.model_dump(),
            "outstanding_fen": f.outstanding_fen,
            "room_fen": f.room_fen,
            "deposit_met": f.deposit_met,
            "fully_paid": f.fully_paid,
            "suggested_fen": f.suggested_fen if plan.state == rules.PlanState.OPEN else 0,
            "suggested_stage": f.stage if plan.state == rules.PlanState.OPEN else None,
            "payee": PayeeOut.model_validate(payee) if payee else None,
            "remittances": [RemittanceOut.model_validate(r) for r in remittances],
            "refunds": [RefundOut.model_validate(r) for r in refunds.all()],
            "actions": plan_actions(plan, principal, f, payee),
            "termination_pending": held(plan.termination_request_id, plan.state),
        }
    )


# --- remittances -------------------------------------------------------------------------------


async def record(
    session: AsyncSession, order_id: str, principal: Principal, body: RemittanceIn
) -> Remittance:
    """The enterprise records a transfer. Under the plan's lock: what is pending plus what is
    confirmed never exceeds what is owed, however many are recorded at once."""
    plan = await lock(session, PaymentPlan, order_id)
    if plan is None:
        raise errors.plan_not_found()
    if held(plan.termination_request_id, plan.state):
        raise errors.termination_pending()
    payee = await payee_of(session, plan.provider_id)
    if payee is None and plan.state == rules.PlanState.OPEN:
        raise errors.payee_account_missing()
    try:
        f = rules.record(figures(plan), plan.state, body.amount_fen)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    apply(plan, f)
    session.add(plan)
    remittance = Remittance(
        order_id=plan.order_id,
        order_no=plan.order_no,
        enterprise_id=plan.enterprise_id,
        provider_id=plan.provider_id,
        enterprise_name=plan.enterprise_name,
        provider_name=plan.provider_name,
        product_name=plan.product_name,
        amount_fen=body.amount_fen,
        bank_reference=body.bank_reference,
        payer_account=body.payer_account,
        receipt_file_ids=list(body.receipt_file_ids),
        payee_account_name=payee.account_name if payee else "",
        payee_account_number=payee.account_number if payee else "",
        state=rules.RemittanceState.PENDING.value,
        recorded_by=principal.user_id,
        created_at=utcnow(),
    )
    session.add(remittance)
    await session.flush()
    await emit(
        session,
        RemittanceRecorded(
            order_id=plan.order_id,
            order_no=plan.order_no,
            remittance_id=remittance.id,
            enterprise_id=plan.enterprise_id,
            provider_id=plan.provider_id,
            amount_fen=remittance.amount_fen,
            bank_reference=remittance.bank_reference,
        ),
        aggregate_id=plan.order_id,
    )
    return remittance


async def decide(
    session: AsyncSession,
    remittance_id: str,
    principal: Principal,
    *,
    confirm: bool,
    reason: str | None = None,
) -> Remittance:
    """到账核实 by the payee provider or finance: confirmed (paid, and
    ``payments.payment_received``) or rejected with a reason; once."""
    found = await session.get(Remittance, remittance_id)
    if found is None:
        raise errors.remittance_not_found()
    authorise_decision(found, principal)
    plan = await lock(session, PaymentPlan, found.order_id)
    remittance = await lock(session, Remittance, remittance_id)
    if plan is None or remittance is None:
        raise errors.remittance_not_found()
    try:
        f = rules.decide(figures(plan), plan.state, remittance.state, remittance.amount_fen, confirm=confirm)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    apply(plan, f)
    session.add(plan)
    remittance.state = (rules.RemittanceState.CONFIRMED if confirm else rules.RemittanceState.REJECTED).value
    remittance.decided_by, remittance.decided_role = principal.user_id, principal.role
    remittance.decided_at = utcnow()
    remittance.reject_reason = None if confirm else reason
    session.add(remittance)
    if principal.is_staff:
        audit(
            session,
            principal,
            "remittance.confirm" if confirm else "remittance.reject",
            "remittance",
            remittance.id,
            reason=reason,
            order_id=remittance.order_id,
            amount_fen=remittance.amount_fen,
        )
    if confirm and plan.state == rules.PlanState.TERMINATED:
        await session.flush()
        await refunds.owe_back_confirmed(session, plan)  # received after the termination: owed back
    if confirm:
        await emit(
            session,
            PaymentReceived(
                order_id=plan.order_id,
                remittance_id=remittance.id,
                amount_fen=remittance.amount_fen,
                paid_fen=f.paid_fen,
                outstanding_fen=f.outstanding_fen,
                deposit_met=f.deposit_met,
                fully_paid=f.fully_paid,
                enterprise_id=plan.enterprise_id,
                provider_id=plan.provider_id,
                order_no=plan.order_no,
            ),
            aggregate_id=plan.order_id,
        )
    else:
        await emit(
            session,
            RemittanceRejected(
                order_id=plan.order_id,
                order_no=plan.order_no,
                remittance_id=remittance.id,
                enterprise_id=plan.enterprise_id,
                provider_id=plan.provider_id,
                amount_fen=remittance.amount_fen,
                reason=reason or "",
            ),
            aggregate_id=plan.order_id,
        )
    await session.flush()
    return remittance


def authorise_decision(remittance: Remittance, principal: Principal) -> None:
    """The payee provider or finance decide; the paying enterprise never does; anyone else
    does not see the remittance at all."""
    if is_finance(principal) or is_member_of(principal, remittance.provider_id):
        return
    if is_member_of(principal, remittance.enterprise_id):
        raise errors.enterprise_cannot_confirm()
    if principal.is_staff:
        raise forbidden_role()
    raise errors.remittance_not_found()


def counts_row(rows: Any) -> dict[str, int]:
    return {str(state): int(n) for state, n in rows}
