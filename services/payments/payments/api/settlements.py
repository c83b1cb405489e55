"""服务券兑付: the provider's claims, finance's review and payouts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from sqlmodel import col, select

from common.app import RuntimeDep, SessionDep
from common.auth import Principal, require_capability
from common.files import check_files, file_problem
from common.orgs import require_active
from common.pagination import Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from payments.api import state_counts
from payments.deps import FinanceUser
from payments.models import SettlementClaim
from payments.schemas.settlements import ClaimIn, DecisionIn, PayIn, RejectClaimIn, SettlementOut
from payments.service import settlements as service

router = APIRouter(prefix=API_PREFIX, tags=["settlements"])

SettlementId = Annotated[str, Path(max_length=64)]
ProviderUser = Annotated[Principal, Depends(require_capability("provider"))]
SettlementState = Literal["open", "claimed", "approved", "paid", "rejected", "cancelled"]


@router.get("/me/settlements", response_model=TabbedPage[SettlementOut])
async def my_settlements(
    user: ProviderUser, session: SessionDep, paging: Paging, state: SettlementState | None = None
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


@router.post("/settlements/{settlement_id}/claim", response_model=SettlementOut)
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


@router.get("/admin/settlements", response_model=TabbedPage[SettlementOut])
async def admin_settlements(
    user: FinanceUser, session: SessionDep, paging: Paging, state: SettlementState | None = None
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


@router.post("/admin/settlements/{settlement_id}/approve", response_model=SettlementOut)
async def approve(
    settlement_id: SettlementId, user: FinanceUser, session: SessionDep, body: DecisionIn | None = None
) -> SettlementOut:
    row = await service.decide(session, settlement_id, user, "approve", reason=body.reason if body else None)
    out = service.view(row, user)
    await session.commit()
    return out


@router.post("/admin/settlements/{settlement_id}/reject", response_model=SettlementOut)
async def reject(
    settlement_id: SettlementId, body: RejectClaimIn, user: FinanceUser, session: SessionDep
) -> SettlementOut:
    row = await service.decide(session, settlement_id, user, "reject", reason=body.reason)
    out = service.view(row, user)
    await session.commit()
    return out


@router.post("/admin/settlements/{settlement_id}/pay", response_model=SettlementOut)
async def pay(
    settlement_id: SettlementId, body: PayIn, user: FinanceUser, session: SessionDep
) -> SettlementOut:
    """The payout is made (only after approval): ``payments.settlement_paid``."""
    row = await service.decide(session, settlement_id, user, "pay", payout_reference=body.payout_reference)
    out = service.view(row, user)
    await session.commit()
    return out
