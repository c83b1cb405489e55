"""Refunds due after a termination (finance)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from sqlmodel import col, select

from common.app import SessionDep
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments.api import state_counts
from payments.deps import FinanceUser
from payments.models import Refund
from payments.schemas.refunds import MarkRefundedIn, RefundOut
from payments.service import refunds as service

router = APIRouter(prefix=API_PREFIX, tags=["refunds"])


@router.get("/admin/refunds", response_model=TabbedPage[RefundOut])
async def admin_refunds(
    _user: FinanceUser, session: SessionDep, paging: Paging, state: Literal["due", "refunded"] | None = None
) -> TabbedPage[RefundOut]:
    query = select(Refund)
    if state:
        query = query.where(col(Refund.state) == state)
    query = query.order_by(col(Refund.created_at).desc(), col(Refund.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[RefundOut](
        items=[RefundOut.model_validate(r) for r in rows],
        total=total,
        counts=await state_counts(session, Refund),
        **paging.echo(),
    )


@router.post("/admin/refunds/{refund_id}/mark-refunded", response_model=RefundOut)
async def mark_refunded(
    refund_id: Annotated[str, Path(max_length=64)],
    body: MarkRefundedIn,
    user: FinanceUser,
    session: SessionDep,
) -> RefundOut:
    refund = await service.mark_refunded(session, refund_id, user, body.refund_reference)
    out = RefundOut.model_validate(refund)
    await session.commit()
    return out
