"""服务产品管理 (the provider's products) and the reviewers' product queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog import errors
from catalog.deps import (
    ActiveProvider,
    OwnProduct,
    ProviderMember,
    ReadOwnProduct,
    ReadProviderMember,
    ReviewedProduct,
    SettingsDep,
)
from catalog.domain import products as rules
from catalog.models import Product, Provider
from catalog.schemas.products import AdminProductOut, ProductIn, ProductOut
from catalog.schemas.providers import ReviewDecisionIn
from catalog.service import products as service
from common.app import ReadSessionDep, SessionDep
from common.auth import ReviewerUser
from common.categories import voucher_type_for
from common.errors import Problem
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing
from common.pagination import Paging, TabbedPage, paginate

router = APIRouter(prefix="/api/v1", tags=["products"])

StatusQuery = Annotated[
    rules.Status | None, Query(description="draft, pending_review, rejected, listed, unlisted")
]


def refused(status: rules.Status, action: rules.Action) -> Problem:
    """The refusal of ``action`` in ``status`` as the service answers it (for the API description)."""
    return errors.transition_refused(rules.STATUS_LABELS[status], errors.ACTION_LABELS[action])


PROVIDER = (errors.provider_required, errors.provider_not_approved)
ACTIVE_PROVIDER = (*PROVIDER, organization_suspended, organization_syncing)
OWN_PRODUCT = (*PROVIDER, errors.product_not_found)
PRODUCT_INPUT = (
    errors.unknown_category,
    errors.price_above_market,
    errors.price_not_positive,
    errors.max_subsidy_negative,
)


def product_out(p: Product) -> ProductOut:
    return ProductOut.model_validate(p).model_copy(
        update={
            "status_label": rules.STATUS_LABELS[p.status],
            "voucher_type": voucher_type_for(p.category),
            "actions": rules.actions(p.status),
        }
    )


def admin_out(p: Product, provider_name: str) -> AdminProductOut:
    base = product_out(p).model_dump()
    return AdminProductOut.model_validate(
        {**base, "provider_name": provider_name, "flagged": bool(p.review_flags), "actions": []}
    )


async def status_counts(session: AsyncSession, *conditions: object) -> dict[str, int]:
    grouped = (
        await session.exec(
            select(col(Product.status), func.count()).where(*conditions).group_by(col(Product.status))  # type: ignore[arg-type]
        )
    ).all()
    return {s.value: 0 for s in rules.Status} | {str(s): int(n) for s, n in grouped}


@router.get(
    "/me/products",
    response_model=TabbedPage[ProductOut],
    summary="服务产品管理",
    description=(
        "服务机构成员查看本机构的服务产品，最近修改的在前，可按状态（草稿、待审核、审核不通过、已上架、已下架）"
        "筛选，并给出各状态的数量；每项的 actions 为当前可做的操作（edit、submit、unlist、relist）。"
    ),
    response_description="一页本机构的服务产品及各状态的数量",
    responses=problems(*PROVIDER),
)
async def my_products(
    caller: ReadProviderMember, session: ReadSessionDep, paging: Paging, status: StatusQuery = None
) -> TabbedPage[ProductOut]:
    mine = col(Product.provider_id) == caller.org_id
    query = select(Product).where(mine).order_by(col(Product.updated_at).desc(), col(Product.id).desc())
    if status:
        query = query.where(col(Product.status) == status)
    total, rows = await paginate(session, query, paging)
    counts = await status_counts(session, mine)
    return TabbedPage[ProductOut](
        items=[product_out(p) for p in rows], total=total, counts=counts, **paging.echo()
    )


@router.post(
    "/me/products",
    response_model=ProductOut,
    status_code=201,
    summary="新增服务产品",
    description=(
        "未被暂停的服务机构新增一个服务产品，保存为草稿（提交审核后才会上架）：服务产品名称、服务类型、"
        "服务内容、服务交付物、验收标准、市场指导价、平台销售价（不高于市场指导价）和最高补贴，金额单位为分。"
        "预审提示（如含有违禁用语）随结果立即给出（review_flags）。事件 catalog.product_changed。"
    ),
    response_description="新建的服务产品（草稿）",
    responses=problems(*ACTIVE_PROVIDER, *PRODUCT_INPUT),
)
async def create_product(
    body: ProductIn, caller: ActiveProvider, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """A draft; the pre-review flags show at once."""
    product = await service.create(session, caller.org_id, body, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.get(
    "/me/products/{product_id}",
    response_model=ProductOut,
    summary="服务产品详情（服务机构）",
    description="服务机构成员查看本机构的一个服务产品（任何状态），含预审提示和审核不通过的原因；其他机构的产品不存在。",
    response_description="本机构的服务产品",
    responses=problems(*OWN_PRODUCT),
)
async def my_product(product: ReadOwnProduct) -> ProductOut:
    return product_out(product)


@router.put(
    "/me/products/{product_id}",
    response_model=ProductOut,
    summary="编辑服务产品",
    description=(
        "未被暂停的服务机构修改本机构的服务产品（整体替换）。已上架的产品若平台销售价、市场指导价或最高补贴"
        "改变，或出现新的预审提示，将下架回到待审核；其他修改即时生效。事件 catalog.product_changed。"
    ),
    response_description="修改后的服务产品",
    responses=problems(*ACTIVE_PROVIDER, errors.product_not_found, *PRODUCT_INPUT),
)
async def edit_product(
    body: ProductIn, _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Edit; a listed product whose price or max subsidy changes goes back to review."""
    await service.edit(session, product, body, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post(
    "/me/products/{product_id}/submit",
    response_model=ProductOut,
    summary="提交审核",
    description="未被暂停的服务机构把草稿或审核不通过的服务产品提交平台审核，状态变为待审核。事件 catalog.product_changed。",
    response_description="提交审核后的服务产品",
    responses=problems(
        *ACTIVE_PROVIDER, errors.product_not_found, refused(rules.Status.LISTED, rules.Action.SUBMIT)
    ),
)
async def submit(
    _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    await service.act(session, product, rules.Action.SUBMIT, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post(
    "/me/products/{product_id}/unlist",
    response_model=ProductOut,
    summary="下架",
    description=(
        "服务机构成员把已上架的服务产品下架，门户不再展示，企业不能再申请；被暂停的机构也可以下架。"
        "事件 catalog.product_changed。"
    ),
    response_description="下架后的服务产品",
    responses=problems(*OWN_PRODUCT, refused(rules.Status.DRAFT, rules.Action.UNLIST)),
)
async def unlist(
    _caller: ProviderMember, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Unlisting starts nothing new: a suspended provider may still take a product down."""
    await service.act(session, product, rules.Action.UNLIST, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post(
    "/me/products/{product_id}/relist",
    response_model=ProductOut,
    summary="重新上架",
    description=(
        "未被暂停的服务机构把已下架的服务产品重新上架：自审核通过后价格和最高补贴未变时立即上架，"
        "否则回到待审核。事件 catalog.product_changed。"
    ),
    response_description="重新上架（或待审核）的服务产品",
    responses=problems(
        *ACTIVE_PROVIDER, errors.product_not_found, refused(rules.Status.LISTED, rules.Action.RELIST)
    ),
)
async def relist(
    _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Listed again at once when unchanged since its approval, else back to review."""
    await service.act(session, product, rules.Action.RELIST, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.get(
    "/admin/products",
    response_model=TabbedPage[AdminProductOut],
    summary="服务产品审核列表",
    description=(
        "审核员查看服务产品，默认只看待审核的，先提交的在前；可按状态和有无预审提示（flagged）筛选，"
        "并给出各状态的数量。每项带服务机构名称和预审提示。"
    ),
    response_description="一页服务产品及各状态的数量",
)
async def review_queue(
    _reviewer: ReviewerUser,
    session: ReadSessionDep,
    paging: Paging,
    status: StatusQuery = rules.Status.PENDING_REVIEW,
    flagged: bool | None = None,
) -> TabbedPage[AdminProductOut]:
    """The review queue (oldest submission first) with the pre-review flags."""
    query = (
        select(Product, col(Provider.name))
        .join(Provider, col(Provider.org_id) == col(Product.provider_id), isouter=True)
        .order_by(col(Product.submitted_at).asc().nulls_last(), col(Product.id).asc())
    )
    if status:
        query = query.where(col(Product.status) == status)
    if flagged is not None:
        has_flags = func.jsonb_array_length(col(Product.review_flags)) > 0
        query = query.where(has_flags if flagged else ~has_flags)
    total, rows = await paginate(session, query, paging)
    counts = await status_counts(session)
    return TabbedPage[AdminProductOut](
        items=[admin_out(p, name or "") for p, name in rows], total=total, counts=counts, **paging.echo()
    )


@router.post(
    "/admin/products/{product_id}/approve",
    response_model=ProductOut,
    summary="服务产品审核通过",
    description=(
        "审核员通过待审核的服务产品，产品立即上架；审核意见可选，连同预审提示和价格记入审计日志。"
        "事件 catalog.product_changed、catalog.product_reviewed。"
    ),
    response_description="已上架的服务产品",
    responses=problems(errors.product_not_found, refused(rules.Status.LISTED, rules.Action.APPROVE)),
)
async def approve(
    product: ReviewedProduct,
    reviewer: ReviewerUser,
    session: SessionDep,
    body: ReviewDecisionIn | None = None,
) -> ProductOut:
    await service.review(session, reviewer, product, rules.Action.APPROVE, body.reason if body else None)
    await session.commit()
    return product_out(product)


@router.post(
    "/admin/products/{product_id}/reject",
    response_model=ProductOut,
    summary="服务产品审核不通过",
    description=(
        "审核员驳回待审核的服务产品，须填写不通过的原因；服务机构修改后可再次提交审核。"
        "事件 catalog.product_changed、catalog.product_reviewed。"
    ),
    response_description="审核不通过的服务产品",
    responses=problems(
        errors.product_not_found, errors.reason_required, refused(rules.Status.LISTED, rules.Action.REJECT)
    ),
)
async def reject(
    product: ReviewedProduct,
    reviewer: ReviewerUser,
    session: SessionDep,
    body: ReviewDecisionIn | None = None,
) -> ProductOut:
    await service.review(session, reviewer, product, rules.Action.REJECT, body.reason if body else None)
    await session.commit()
    return product_out(product)
