"""Refunds after a termination: one due per confirmed remittance; finance marks each refunded."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from common.db import lock
from common.rules import Refusal
from common.timers import utcnow
from payments import errors
from payments.domain import refunds as rules
from payments.models import PaymentPlan, Refund, Remittance


async def owe_back_confirmed(session: AsyncSession, plan: PaymentPlan) -> None:
    """A refund due for every confirmed remittance (once each: UNIQUE remittance_id)."""
    confirmed = await session.exec(
        select(Remittance).where(
            col(Remittance.order_id) == plan.order_id, col(Remittance.state) == "confirmed"
        )
    )
    for remittance in confirmed.all():
        await session.execute(
            pg_insert(Refund)
            .values(
                remittance_id=remittance.id,
                order_id=plan.order_id,
                order_no=plan.order_no,
                enterprise_id=plan.enterprise_id,
                provider_id=plan.provider_id,
                enterprise_name=plan.enterprise_name,
                provider_name=plan.provider_name,
                product_name=plan.product_name,
                amount_fen=remittance.amount_fen,
                state=rules.RefundState.DUE.value,
            )
            .on_conflict_do_nothing(index_elements=["remittance_id"])
        )


async def mark_refunded(
    session: AsyncSession, refund_id: str, principal: Principal, reference: str
) -> Refund:
    found = await session.get(Refund, refund_id)
    if found is None:
        raise errors.refund_not_found()
    await lock(session, PaymentPlan, found.order_id)
    refund = await lock(session, Refund, refund_id)
    if refund is None:
        raise errors.refund_not_found()
    try:
        refund.state = rules.mark_refunded(refund.state).value
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    refund.refund_reference, refund.refunded_by, refund.refunded_at = reference, principal.user_id, utcnow()
    session.add(refund)
    audit(
        session,
        principal,
        "refund.mark_refunded",
        "refund",
        refund.id,
        order_id=refund.order_id,
        amount_fen=refund.amount_fen,
        refund_reference=reference,
    )
    await session.flush()
    return refund
