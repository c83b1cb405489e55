"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, func, select

from common.app import SessionDep
from common.auth import InternalCaller
from common.errors import not_found
from common.numbers import shanghai_now
from common.reads import PortalStats, Quote, VoucherBalance, VoucherBalances
from quota import errors
from quota.deps import SettingsDep
from quota.domain.campaigns import in_window
from quota.domain.vouchers import voucher_type_of
from quota.models import Voucher
from quota.service import vouchers as ledger
from quota.service.campaigns import campaign_for

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats, summary="（内部）门户统计数字")
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures quota owns (common.registry: enterprises_with_quota, quota_total_fen,
    pending_budget_fen, deducted_fen): the current campaign's vouchers, and every subsidy
    committed so far."""
    campaign = await campaign_for(session, shanghai_now().date())
    year = campaign.year if campaign else None
    enterprises, total = (
        await session.exec(
            select(
                func.count(func.distinct(Voucher.enterprise_id)),
                func.coalesce(func.sum(Voucher.total_fen), 0),
            ).where(col(Voucher.campaign_year) == year)
        )
    ).one()
    deducted = (await session.exec(select(func.coalesce(func.sum(Voucher.used_fen), 0)))).one()
    return PortalStats(
        {
            "enterprises_with_quota": int(enterprises),
            "quota_total_fen": int(total),
            "pending_budget_fen": int(campaign.pending_budget_fen) if campaign else 0,
            "deducted_fen": int(deducted),
        }
    )


@router.get("/quote", response_model=Quote, summary="（内部）下单时的用券补贴试算")
async def internal_quote(
    _caller: InternalCaller,
    session: SessionDep,
    settings: SettingsDep,
    enterprise_id: Annotated[str, Query(min_length=1)],
    provider_id: Annotated[str, Query(min_length=1)],
    category: Annotated[str, Query(min_length=1)],
    price_fen: Annotated[int, Query(ge=0)],
    max_subsidy_fen: Annotated[int, Query(ge=0)],
) -> Quote:
    """The subsidy the enterprise's voucher would give now (orders at submission, catalog's
    voucher preview); 404 when it has no usable voucher of the type that pays for the category."""
    voucher_type = voucher_type_of(category)
    if voucher_type is None:
        raise errors.unknown_category()
    today = shanghai_now().date()
    voucher = await ledger.usable_voucher(session, enterprise_id, voucher_type, today)
    if (
        voucher is None
        or voucher.expired_at is not None
        or not in_window(today, voucher.valid_from, voucher.valid_to)
        or voucher.remaining_fen <= 0
    ):
        raise not_found("可用的服务券", "no_usable_voucher")
    subsidy = await ledger.quote(
        session,
        voucher=voucher,
        provider_id=provider_id,
        price_fen=price_fen,
        max_subsidy_fen=max_subsidy_fen,
        default_cap_fen=settings.default_provider_cap_fen,
    )
    return Quote(
        voucher_id=voucher.id,
        voucher_no=voucher.voucher_no,
        voucher_type=voucher.voucher_type,
        subsidy_fen=subsidy,
        ratio_bp=voucher.ratio_bp,
        remaining_fen=voucher.remaining_fen,
        valid_from=voucher.valid_from,
        valid_to=voucher.valid_to,
    )


@router.get("/vouchers", response_model=VoucherBalances, summary="（内部）企业的服务券")
async def internal_vouchers(
    _caller: InternalCaller, session: SessionDep, enterprise_id: Annotated[str, Query(min_length=1)]
) -> VoucherBalances:
    """An enterprise's vouchers with their balances (for other services' screens)."""
    rows = await ledger.vouchers_of(session, enterprise_id)
    return VoucherBalances(items=[VoucherBalance.model_validate(v, from_attributes=True) for v in rows])
