"""GET /orders/{order_id}/payment, POST /orders/{order_id}/remittances, 到账核实, finance's queue."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlmodel import col, or_, select

from common.app import RuntimeDep, SessionDep
from common.auth import MEMBER_ROLES, CurrentUser
from common.errors import Problem
from common.files import check_files, grant_files
from common.idempotency import IdempotencyDep
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments.api import state_counts
from payments.deps import FinanceUser, PartyPlan, remittable_plan
from payments.models import Remittance
from payments.schemas.remittances import (
    PaymentOut,
    RejectIn,
    RemittanceIn,
    RemittanceOut,
    RemittanceRowOut,
)
from payments.service import remittances as service

router = APIRouter(prefix=API_PREFIX, tags=["payments"])

RemittanceId = Annotated[str, Path(max_length=64)]


@router.get("/orders/{order_id}/payment", response_model=PaymentOut)
async def payment(plan: PartyPlan, user: CurrentUser, session: SessionDep) -> PaymentOut:
    """合同信息与支付信息: payable (with 实付大写金额), deposit, balance, what is paid and pending,
    the payee's receiving account and every transfer recorded."""
    return await service.payment_view(session, plan, user)


@router.post("/orders/{order_id}/remittances", response_model=RemittanceOut, status_code=201)
async def record_remittance(
    order_id: Annotated[str, Path(max_length=64)],
    body: RemittanceIn,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    idem: IdempotencyDep,
) -> RemittanceOut:
    """确认汇款: the enterprise records a corporate transfer (Idempotency-Key); installments
    allowed; what is pending plus what is confirmed never exceeds the payable.

    The key is claimed before this request's session touches the database, and a refusal
    rolls the session back before the claim is given back: a request never holds two pooled
    connections, nor the plan's lock while it waits for one (twenty at once stay quick)."""
    async with idem.claim(user.user_id, body) as claim:
        if claim.replay is not None:
            return claim.replay
        try:
            plan = await remittable_plan(order_id, user, session)
            await check_files(
                runtime.clients,
                body.receipt_file_ids,
                org_id=user.org_id,
                field="receipt_file_ids",
                required=False,
            )
            remittance = await service.record(session, plan.order_id, user, body)
            if body.receipt_file_ids:
                await grant_files(
                    runtime.clients, body.receipt_file_ids, plan.provider_id, f"汇款凭证 订单 {plan.order_id}"
                )
            out = RemittanceOut.model_validate(remittance)
            await claim.done(session, 201, out)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        return out


@router.post("/remittances/{remittance_id}/confirm", response_model=RemittanceOut)
async def confirm(remittance_id: RemittanceId, user: CurrentUser, session: SessionDep) -> RemittanceOut:
    """到账核实 by the payee provider or finance: the transfer counts as paid."""
    remittance = await service.decide(session, remittance_id, user, confirm=True)
    out = RemittanceOut.model_validate(remittance)
    await session.commit()
    return out


@router.post("/remittances/{remittance_id}/reject", response_model=RemittanceOut)
async def reject(
    remittance_id: RemittanceId, body: RejectIn, user: CurrentUser, session: SessionDep
) -> RemittanceOut:
    """The transfer did not arrive as recorded: rejected with a reason, its room given back."""
    remittance = await service.decide(session, remittance_id, user, confirm=False, reason=body.reason)
    out = RemittanceOut.model_validate(remittance)
    await session.commit()
    return out


@router.get("/remittances", response_model=TabbedPage[RemittanceRowOut])
async def my_remittances(
    user: CurrentUser,
    session: SessionDep,
    paging: Paging,
    state: Literal["pending", "confirmed", "rejected"] | None = None,
) -> TabbedPage[RemittanceRowOut]:
    """The caller's organisation's transfers across its orders: a provider's 到账核实 queue
    (``state=pending``: transfers to it waiting for its confirmation), an enterprise's own."""
    org = user.org_id if user.role in MEMBER_ROLES else None
    if org is None:
        raise Problem(403, "member_required", "请使用企业或服务机构账号查看")
    mine = or_(col(Remittance.provider_id) == org, col(Remittance.enterprise_id) == org)
    query = select(Remittance).where(mine)
    if state:
        query = query.where(col(Remittance.state) == state)
    query = query.order_by(col(Remittance.created_at).desc(), col(Remittance.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[RemittanceRowOut](
        items=[RemittanceRowOut.model_validate(r) for r in rows],
        total=total,
        counts=await state_counts(session, Remittance, mine),
        **paging.echo(),
    )


@router.get("/admin/remittances", response_model=TabbedPage[RemittanceRowOut])
async def admin_remittances(
    _user: FinanceUser,
    session: SessionDep,
    paging: Paging,
    state: Literal["pending", "confirmed", "rejected"] | None = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> TabbedPage[RemittanceRowOut]:
    """Finance's queue of transfers to verify (tabs by state)."""
    base = [col(Remittance.order_id) == order_id] if order_id else []
    query = select(Remittance).where(*base)
    if state:
        query = query.where(col(Remittance.state) == state)
    query = query.order_by(col(Remittance.created_at).desc(), col(Remittance.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[RemittanceRowOut](
        items=[RemittanceRowOut.model_validate(r) for r in rows],
        total=total,
        counts=await state_counts(session, Remittance, *base),
        **paging.echo(),
    )
