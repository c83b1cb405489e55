"""GET /orders/{order_id}/payment, POST /orders/{order_id}/remittances, 到账核实, finance's queue."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlmodel import col, or_, select

from common import idempotency
from common.app import ReadSessionDep, RuntimeDep, SessionDep
from common.auth import MEMBER_ROLES, CurrentUser, FinanceUser, forbidden_role
from common.files import check_files, check_problems, file_grant_failed, grant_files
from common.idempotency import IdempotencyDep
from common.internal import unavailable
from common.openapi import problems
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments import errors
from payments.api import state_counts
from payments.deps import PartyPlan, remittable_plan
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


DECISION = (
    errors.remittance_not_found,
    errors.enterprise_cannot_confirm,
    forbidden_role,
    errors.remittance_not_pending,
)


@router.get(
    "/orders/{order_id}/payment",
    response_model=PaymentOut,
    summary="合同信息与支付信息",
    description=(
        "订单的企业、服务机构或平台人员查看双方签署合同后的支付信息：实付金额（含实付大写金额）、定金、尾款、"
        "已付和待核实的金额（分）、服务机构的收款账户（对公转账）及每笔汇款记录；调用者当前可做的操作在 actions。"
        "合同签署前没有支付信息（404）。"
    ),
    response_description="订单的支付信息",
    responses=problems(errors.plan_not_found),
)
async def payment(plan: PartyPlan, user: CurrentUser, session: ReadSessionDep) -> PaymentOut:
    """合同信息与支付信息: payable (with 实付大写金额), deposit, balance, what is paid and pending,
    the payee's receiving account and every transfer recorded."""
    return await service.payment_view(session, plan, user)


@router.post(
    "/orders/{order_id}/remittances",
    response_model=RemittanceOut,
    status_code=201,
    summary="确认汇款",
    description=(
        "订单的购买企业对公转账后登记一笔汇款（须带 Idempotency-Key 请求头；同一键重放时答第一次的结果）："
        "汇款金额（分）、银行流水号、付款账号和可选的汇款凭证（本单位上传的文件，登记后服务机构可查看）。"
        "支持分次汇款；待核实与已核实的金额合计不超过实付金额。汇款待服务机构或平台财务到账核实"
        "（事件 payments.remittance_recorded）。合同签署前不能登记（409 contract_not_signed）。"
    ),
    response_description="登记的汇款（待核实）",
    responses=problems(
        errors.contract_not_signed,
        errors.plan_not_found,
        errors.not_the_enterprise,
        *check_problems("receipt_file_ids", required=False),
        unavailable("identity"),
        file_grant_failed,
        errors.termination_pending,
        errors.payee_account_missing,
        errors.contract_terminated,
        errors.already_fully_paid,
        errors.plan_closed,
        errors.remittance_exceeds_outstanding(100000),
        idempotency.key_required,
        idempotency.key_reused,
        idempotency.key_in_flight,
        idempotency.claim_lost,
    ),
)
async def record_remittance(
    order_id: Annotated[str, Path(max_length=64)],
    body: RemittanceIn,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    idem: IdempotencyDep,
) -> RemittanceOut | JSONResponse:
    """确认汇款: the enterprise records a corporate transfer (Idempotency-Key); installments
    allowed; what is pending plus what is confirmed never exceeds the payable.

    The key is claimed before this request's session touches the database, and a refusal
    has the claim roll the session back before it gives the key back: a request never holds
    two pooled connections, nor the plan's lock while it waits for one (twenty at once stay
    quick)."""
    async with idem.claim(user.user_id, body, session) as claim:
        if claim.replay is not None:
            return claim.replay
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
        await claim.done(201, out)
        await session.commit()
        return out


@router.post(
    "/remittances/{remittance_id}/confirm",
    response_model=RemittanceOut,
    summary="到账核实",
    description=(
        "收款的服务机构或平台财务核实一笔待核实的汇款已到账：计为已付（事件 payments.payment_received），"
        "付够定金后订单进入待服务，付清后服务完成的订单完成。付款企业不能自行核实；每笔汇款只能处理一次。"
        "合同终止后核实的汇款记为应退款。"
    ),
    response_description="已核实的汇款",
    responses=problems(*DECISION),
)
async def confirm(remittance_id: RemittanceId, user: CurrentUser, session: SessionDep) -> RemittanceOut:
    """到账核实 by the payee provider or finance: the transfer counts as paid."""
    remittance = await service.decide(session, remittance_id, user, confirm=True)
    out = RemittanceOut.model_validate(remittance)
    await session.commit()
    return out


@router.post(
    "/remittances/{remittance_id}/reject",
    response_model=RemittanceOut,
    summary="汇款未到账（驳回）",
    description=(
        "收款的服务机构或平台财务认定一笔汇款未按登记到账，须填写原因；汇款被驳回，其金额不再占用可登记额度"
        "（事件 payments.remittance_rejected）。付款企业不能处理；每笔汇款只能处理一次。"
    ),
    response_description="已驳回的汇款",
    responses=problems(*DECISION),
)
async def reject(
    remittance_id: RemittanceId, body: RejectIn, user: CurrentUser, session: SessionDep
) -> RemittanceOut:
    """The transfer did not arrive as recorded: rejected with a reason, its room given back."""
    remittance = await service.decide(session, remittance_id, user, confirm=False, reason=body.reason)
    out = RemittanceOut.model_validate(remittance)
    await session.commit()
    return out


@router.get(
    "/remittances",
    response_model=TabbedPage[RemittanceRowOut],
    summary="汇款记录",
    description=(
        "企业或服务机构的成员查看本单位各订单的汇款，新的在前，可按状态筛选并给出各状态的数量："
        "服务机构的到账核实列表（state=pending：等待本机构核实的汇款），企业自己登记的汇款。"
    ),
    response_description="一页汇款及各状态的数量",
    responses=problems(errors.member_required),
)
async def my_remittances(
    user: CurrentUser,
    session: ReadSessionDep,
    paging: Paging,
    state: Literal["pending", "confirmed", "rejected"] | None = None,
) -> TabbedPage[RemittanceRowOut]:
    """The caller's organisation's transfers across its orders: a provider's 到账核实 queue
    (``state=pending``: transfers to it waiting for its confirmation), an enterprise's own."""
    org = user.org_id if user.role in MEMBER_ROLES else None
    if org is None:
        raise errors.member_required()
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


@router.get(
    "/admin/remittances",
    response_model=TabbedPage[RemittanceRowOut],
    summary="汇款核实（财务）",
    description="平台财务查看全部汇款，新的在前，可按状态和订单筛选，并给出各状态的数量。",
    response_description="一页汇款及各状态的数量",
)
async def admin_remittances(
    _user: FinanceUser,
    session: ReadSessionDep,
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
