"""The enterprise's vouchers (the manual's quota screen), their journal and the subsidy preview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import col, select

from common.app import ReadSessionDep, RuntimeDep
from common.auth import EnterpriseUser, StaffUser
from common.categories import VOUCHER_TYPES
from common.internal import unavailable
from common.numbers import format_date_cn, shanghai_now
from common.openapi import problems
from common.pagination import Page, Paging, paginate
from common.reads import ProductFacts
from quota import errors
from quota.deps import OwnedVoucher, ReadCampaign, SettingsDep
from quota.domain.campaigns import in_window
from quota.domain.vouchers import STATE_LABELS, is_expired, voucher_state, voucher_type_of
from quota.models import QuotaApplication, Voucher
from quota.schemas.vouchers import (
    MOVEMENT_LABELS,
    MovementOut,
    MovementsOut,
    MyVoucherOut,
    MyVouchersOut,
    QuoteOut,
    VoucherOut,
)
from quota.service import vouchers as ledger
from quota.service.campaigns import types_of

router = APIRouter(prefix="/api/v1", tags=["vouchers"])


@router.get(
    "/me/vouchers",
    response_model=MyVouchersOut,
    summary="服务券配额（每种类型一项）",
    description=(
        "已认证企业查看本年度每种服务券的状态（未申请、审核中、可使用、已过期等）、券号、总额度、"
        "已使用、预留中、剩余额度与有效期，以及最近一次申请（含不通过的理由）。"
    ),
    response_description="本年度每种服务券一项",
    responses=problems(errors.no_campaign),
)
async def my_vouchers(user: EnterpriseUser, session: ReadSessionDep, campaign: ReadCampaign) -> MyVouchersOut:
    today = shanghai_now().date()
    kinds = await types_of(session, campaign.year)
    mine = {
        v.voucher_type: v
        for v in (
            await session.exec(
                select(Voucher).where(
                    col(Voucher.enterprise_id) == user.org_id, col(Voucher.campaign_year) == campaign.year
                )
            )
        ).all()
    }
    apps = (
        await session.exec(
            select(QuotaApplication)
            .where(
                col(QuotaApplication.enterprise_id) == user.org_id,
                col(QuotaApplication.campaign_year) == campaign.year,
            )
            .order_by(col(QuotaApplication.created_at).desc())
        )
    ).all()
    latest: dict[str, QuotaApplication] = {}
    for a in apps:
        latest.setdefault(a.voucher_type, a)
    items: list[MyVoucherOut] = []
    for voucher_type, kind in kinds.items():
        v = mine.get(voucher_type)
        app = latest.get(voucher_type)
        state = voucher_state(
            has_voucher=v is not None,
            expired=v is not None and is_expired(v.expired_at, v.valid_to, today),
            application_state=app.state if app else None,
        )
        valid_from, valid_to = (v.valid_from, v.valid_to) if v else (kind.valid_from, kind.valid_to)
        doc: dict[str, Any] = {
            "voucher_type": voucher_type,
            "voucher_type_label": VOUCHER_TYPES[voucher_type],
            "state": state,
            "state_label": STATE_LABELS[state],
            "policy_text": kind.policy_text,
            "application_id": app.id if app else None,
            "reject_reason": app.reason if app and app.state == "rejected" else None,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "valid_label": f"{format_date_cn(valid_from)}~{format_date_cn(valid_to)}",
        }
        if v is not None:
            doc.update(
                voucher_id=v.id,
                voucher_no=v.voucher_no,
                tier=v.tier,
                total_fen=v.total_fen,
                used_fen=v.used_fen,
                reserved_fen=v.reserved_fen,
                remaining_fen=v.remaining_fen,
                settled_fen=v.settled_fen,
                expired_fen=v.expired_fen,
                pending_application_id=app.id if app and app.state == "pending_review" else None,
            )
        items.append(MyVoucherOut.model_validate(doc))
    return MyVouchersOut(year=campaign.year, items=items)


@router.get(
    "/me/vouchers/{voucher_id}/movements",
    response_model=MovementsOut,
    summary="服务券台账",
    description="企业查看本单位一张服务券的额度变动：发放、预留、释放、使用、结算与过期，按时间排列（分页）。",
    response_description="该服务券的额度变动记录",
    responses=problems(errors.voucher_not_found),
)
async def voucher_movements(voucher: OwnedVoucher, session: ReadSessionDep, paging: Paging) -> MovementsOut:
    total, rows = await ledger.movements(session, voucher.id, paging)
    items = [
        MovementOut.model_validate(r).model_copy(update={"kind_label": MOVEMENT_LABELS[r.kind]}) for r in rows
    ]
    return MovementsOut(
        voucher_id=voucher.id, voucher_no=voucher.voucher_no, items=items, total=total, **paging.echo()
    )


@router.get(
    "/vouchers/{voucher_id}/quote",
    response_model=QuoteOut,
    summary="用券预览（券后价）",
    description=(
        "企业下单前预览用本单位的服务券购买某服务产品：可抵扣的补贴（受比例、产品最高补贴、剩余额度与"
        "服务机构年度补贴上限限制）、应付金额与用券后剩余额度。只预览，不预留额度。"
    ),
    response_description="补贴与应付金额（分）",
    responses=problems(
        errors.voucher_not_found, errors.product_not_found, errors.wrong_voucher_type, unavailable("catalog")
    ),
)
async def quote(
    voucher: OwnedVoucher,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    product_id: Annotated[str, Query(min_length=1, max_length=64)],
    amount_fen: Annotated[int | None, Query(gt=0, le=10**13)] = None,
) -> QuoteOut:
    product = await runtime.clients.read("catalog", f"/internal/products/{product_id}", ProductFacts)
    if product is None:
        raise errors.product_not_found()
    if voucher_type_of(product.category) != voucher.voucher_type:
        raise errors.wrong_voucher_type()
    price = amount_fen if amount_fen is not None else product.platform_price_fen
    max_subsidy = product.max_subsidy_fen
    today = shanghai_now().date()
    usable = voucher.expired_at is None and in_window(today, voucher.valid_from, voucher.valid_to)
    subsidy = (
        await ledger.quote(
            session,
            voucher=voucher,
            provider_id=product.provider_id,
            price_fen=price,
            max_subsidy_fen=max_subsidy,
            default_cap_fen=settings.default_provider_cap_fen,
        )
        if usable
        else 0
    )
    return QuoteOut(
        voucher_id=voucher.id,
        voucher_no=voucher.voucher_no,
        voucher_type=voucher.voucher_type,
        product_id=product_id,
        price_fen=price,
        subsidy_fen=subsidy,
        payable_fen=price - subsidy,
        remaining_after_fen=voucher.remaining_fen - subsidy,
        max_subsidy_fen=max_subsidy,
        ratio_bp=voucher.ratio_bp,
        valid_from=voucher.valid_from,
        valid_to=voucher.valid_to,
    )


@router.get(
    "/admin/vouchers",
    response_model=Page[VoucherOut],
    summary="服务券一览（管理端）",
    description="平台人员按企业、券种与年度查询已发放的服务券及其额度使用情况，新发放的在前。",
    response_description="一页服务券",
)
async def all_vouchers(
    _staff: StaffUser,
    session: ReadSessionDep,
    paging: Paging,
    enterprise_id: Annotated[str | None, Query(max_length=36)] = None,
    voucher_type: Annotated[str | None, Query(max_length=30)] = None,
    year: Annotated[int | None, Query(ge=2020, le=2100)] = None,
) -> Page[VoucherOut]:
    query = select(Voucher)
    if enterprise_id:
        query = query.where(col(Voucher.enterprise_id) == enterprise_id)
    if voucher_type:
        query = query.where(col(Voucher.voucher_type) == voucher_type)
    if year:
        query = query.where(col(Voucher.campaign_year) == year)
    total, rows = await paginate(
        session, query.order_by(col(Voucher.created_at).desc(), col(Voucher.id)), paging
    )
    return Page[VoucherOut](items=[VoucherOut.model_validate(v) for v in rows], total=total, **paging.echo())
