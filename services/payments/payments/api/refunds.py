"""Refunds due after a termination (finance)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import FinanceUser
from common.openapi import problems
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments import errors
from payments.api import state_counts
from payments.models import Refund
from payments.schemas.refunds import MarkRefundedIn, RefundOut
from payments.service import refunds as service

router = APIRouter(prefix=API_PREFIX, tags=["refunds"])


@router.get(
    "/admin/refunds",
    response_model=TabbedPage[RefundOut],
    summary="应退款（财务）",
    description=(
        "平台财务查看合同终止后应退还企业的款项（终止后才核实到账的汇款），新的在前，"
        "可按状态（待退款、已退款）筛选，并给出各状态的数量。"
    ),
    response_description="一页应退款及各状态的数量",
)
async def admin_refunds(
    _user: FinanceUser,
    session: ReadSessionDep,
    paging: Paging,
    state: Literal["due", "refunded"] | None = None,
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


@router.post(
    "/admin/refunds/{refund_id}/mark-refunded",
    response_model=RefundOut,
    summary="登记退款",
    description="平台财务把款项退还企业后登记退款流水号，应退款变为已退款，记入审计日志；每笔只能登记一次。",
    response_description="已退款的记录",
    responses=problems(errors.refund_not_found, errors.refund_already_refunded),
)
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
