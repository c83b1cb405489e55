"""服务券兑付: the provider's claims, finance's review and payouts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from sqlmodel import col, select

from common.app import ReadSessionDep, RuntimeDep, SessionDep
from common.auth import FinanceUser, ProviderUser, capability_required
from common.files import check_files, check_problems, file_problem
from common.internal import unavailable
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing, require_active
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments import errors
from payments.api import state_counts
from payments.models import SettlementClaim
from payments.schemas.settlements import ClaimIn, DecisionIn, PayIn, RejectClaimIn, SettlementOut
from payments.service import settlements as service

router = APIRouter(prefix=API_PREFIX, tags=["settlements"])

SettlementId = Annotated[str, Path(max_length=64)]
SettlementState = Literal["open", "claimed", "approved", "paid", "rejected", "cancelled"]


PROVIDER = (capability_required("provider"),)
DECISION = (
    errors.settlement_not_found,
    errors.contract_terminated,
    errors.settlement_cancelled,
    errors.settlement_already_paid,
)


@router.get(
    "/me/settlements",
    response_model=TabbedPage[SettlementOut],
    summary="服务券兑付",
    description=(
        "服务机构的成员查看本机构的服务券兑付记录（订单完成后生成），新的在前，可按状态"
        "（可申请、待审核、审核通过、已兑付、审核不通过、已取消）筛选，并给出各状态的数量。"
    ),
    response_description="一页兑付记录及各状态的数量",
    responses=problems(*PROVIDER),
)
async def my_settlements(
    user: ProviderUser, session: ReadSessionDep, paging: Paging, state: SettlementState | None = None
) -> TabbedPage[SettlementOut]:
    """服务券兑付: the provider's claims, with their order numbers."""
    mine = col(SettlementClaim.provider_id) == user.org_id
    query = select(SettlementClaim).where(mine)
    if state:
        query = query.where(col(SettlementClaim.state) == state)
    query = query.order_by(col(SettlementClaim.created_at).desc(), col(SettlementClaim.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[SettlementOut](
        items=[service.view(r, user) for r in rows],
        total=total,
        counts=await state_counts(session, SettlementClaim, mine),
        **paging.echo(),
    )


@router.post(
    "/settlements/{settlement_id}/claim",
    response_model=SettlementOut,
    summary="申请兑付",
    description=(
        "未被暂停的服务机构为已完成订单的服务券补贴申请兑付，须上传发票、企业转账凭证和服务完成证明"
        "（均为必填；转账凭证可以是本机构的文件，或企业在本订单已核实汇款上附的凭证）；"
        "同一份材料只能用于一笔兑付。兑付进入待审核；审核不通过后可修改材料再次申请。"
    ),
    response_description="已提交的兑付申请（待审核）",
    responses=problems(
        *PROVIDER,
        organization_suspended,
        organization_syncing,
        errors.settlement_not_found,
        errors.not_the_provider,
        *check_problems("invoice_file_ids"),
        *check_problems("receipt_file_ids"),
        *check_problems("proof_file_ids"),
        unavailable("identity"),
        errors.file_already_claimed("invoice_file_ids"),
        errors.contract_terminated,
        errors.settlement_cancelled,
        errors.settlement_already_paid,
        errors.settlement_already_claimed,
    ),
)
async def claim(
    settlement_id: SettlementId, body: ClaimIn, user: ProviderUser, session: SessionDep, runtime: RuntimeDep
) -> SettlementOut:
    """申请兑付 with the invoice, the transfer receipt(s) and the service's proof (all required).
    A transfer receipt may be the provider's own file or one the enterprise attached to a
    confirmed transfer of this order."""
    await require_active(session, user, runtime.clients)  # a suspended provider starts nothing new
    found = await service.load_for_provider(session, settlement_id, user)
    await check_files(runtime.clients, body.invoice_file_ids, org_id=user.org_id, field="invoice_file_ids")
    if not body.receipt_file_ids:
        raise file_problem("receipt_file_ids", "files_required", "请上传所需的文件")
    of_order = await service.receipt_files_of_order(session, found.order_id)
    own = [f for f in body.receipt_file_ids if f not in of_order]
    await check_files(runtime.clients, own, org_id=user.org_id, field="receipt_file_ids", required=False)
    await check_files(runtime.clients, body.proof_file_ids, org_id=user.org_id, field="proof_file_ids")
    row = await service.claim(session, settlement_id, user, body)
    out = service.view(row, user)
    await session.commit()
    return out


@router.get(
    "/admin/settlements",
    response_model=TabbedPage[SettlementOut],
    summary="服务券兑付审核（财务）",
    description="平台财务查看全部兑付记录，新的在前，可按状态筛选，并给出各状态的数量。",
    response_description="一页兑付记录及各状态的数量",
)
async def admin_settlements(
    user: FinanceUser, session: ReadSessionDep, paging: Paging, state: SettlementState | None = None
) -> TabbedPage[SettlementOut]:
    query = select(SettlementClaim)
    if state:
        query = query.where(col(SettlementClaim.state) == state)
    query = query.order_by(col(SettlementClaim.created_at).desc(), col(SettlementClaim.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[SettlementOut](
        items=[service.view(r, user) for r in rows],
        total=total,
        counts=await state_counts(session, SettlementClaim),
        **paging.echo(),
    )


@router.post(
    "/admin/settlements/{settlement_id}/approve",
    response_model=SettlementOut,
    summary="兑付审核通过",
    description=(
        "平台财务通过一笔待审核的兑付申请，意见可选，记入审计日志（事件 payments.settlement_approved）；"
        "通过后才能登记打款。"
    ),
    response_description="审核通过的兑付",
    responses=problems(*DECISION, errors.settlement_not_claimed),
)
async def approve(
    settlement_id: SettlementId, user: FinanceUser, session: SessionDep, body: DecisionIn | None = None
) -> SettlementOut:
    row = await service.decide(session, settlement_id, user, "approve", reason=body.reason if body else None)
    out = service.view(row, user)
    await session.commit()
    return out


@router.post(
    "/admin/settlements/{settlement_id}/reject",
    response_model=SettlementOut,
    summary="兑付审核不通过",
    description=(
        "平台财务驳回一笔待审核的兑付申请，须填写原因，记入审计日志（事件 payments.settlement_rejected）；"
        "服务机构可修改材料后再次申请。"
    ),
    response_description="审核不通过的兑付",
    responses=problems(*DECISION, errors.settlement_not_claimed),
)
async def reject(
    settlement_id: SettlementId, body: RejectClaimIn, user: FinanceUser, session: SessionDep
) -> SettlementOut:
    row = await service.decide(session, settlement_id, user, "reject", reason=body.reason)
    out = service.view(row, user)
    await session.commit()
    return out


@router.post(
    "/admin/settlements/{settlement_id}/pay",
    response_model=SettlementOut,
    summary="登记打款",
    description=(
        "平台财务向服务机构打款后登记打款流水号（仅限审核通过的兑付），兑付变为已兑付，记入审计日志"
        "（事件 payments.settlement_paid）；此后该订单的合同不能再终止。合同终止处理中不能登记。"
    ),
    response_description="已兑付的兑付记录",
    responses=problems(*DECISION, errors.termination_pending, errors.settlement_not_approved),
)
async def pay(
    settlement_id: SettlementId, body: PayIn, user: FinanceUser, session: SessionDep
) -> SettlementOut:
    """The payout is made (only after approval): ``payments.settlement_paid``."""
    row = await service.decide(session, settlement_id, user, "pay", payout_reference=body.payout_reference)
    out = service.view(row, user)
    await session.commit()
    return out
