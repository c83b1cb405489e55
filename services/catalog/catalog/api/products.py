"""服务产品管理 (the provider's products) and the reviewers' product queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select

from catalog.deps import ActiveProvider, OwnProduct, ProviderMember, ReviewedProduct, Reviewer, SettingsDep
from catalog.domain import products as rules
from catalog.models import Product, Provider
from catalog.schemas.products import AdminProductOut, ProductIn, ProductOut
from catalog.schemas.providers import ReviewDecisionIn
from catalog.service import products as service
from common.app import SessionDep
from common.categories import voucher_type_for
from common.pagination import Paging, TabbedPage, paginate

router = APIRouter(prefix="/api/v1", tags=["products"])

StatusQuery = Annotated[
    rules.Status | None, Query(description="draft, pending_review, rejected, listed, unlisted")
]


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


async def status_counts(session: SessionDep, *conditions: object) -> dict[str, int]:
    grouped = (
        await session.exec(
            select(col(Product.status), func.count()).where(*conditions).group_by(col(Product.status))  # type: ignore[arg-type]
        )
    ).all()
    return {s.value: 0 for s in rules.Status} | {str(s): int(n) for s, n in grouped}


@router.get("/me/products", response_model=TabbedPage[ProductOut])
async def my_products(
    caller: ProviderMember, session: SessionDep, paging: Paging, status: StatusQuery = None
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


@router.post("/me/products", response_model=ProductOut, status_code=201)
async def create_product(
    body: ProductIn, caller: ActiveProvider, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """A draft; the pre-review flags show at once."""
    product = await service.create(session, caller.org_id, body, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.get("/me/products/{product_id}", response_model=ProductOut)
async def my_product(product: OwnProduct) -> ProductOut:
    return product_out(product)


@router.put("/me/products/{product_id}", response_model=ProductOut)
async def edit_product(
    body: ProductIn, _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Edit; a listed product whose price or max subsidy changes goes back to review."""
    await service.edit(session, product, body, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post("/me/products/{product_id}/submit", response_model=ProductOut)
async def submit(
    _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    await service.act(session, product, rules.Action.SUBMIT, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post("/me/products/{product_id}/unlist", response_model=ProductOut)
async def unlist(
    _caller: ProviderMember, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Unlisting starts nothing new: a suspended provider may still take a product down."""
    await service.act(session, product, rules.Action.UNLIST, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.post("/me/products/{product_id}/relist", response_model=ProductOut)
async def relist(
    _caller: ActiveProvider, product: OwnProduct, session: SessionDep, settings: SettingsDep
) -> ProductOut:
    """Listed again at once when unchanged since its approval, else back to review."""
    await service.act(session, product, rules.Action.RELIST, settings.banned_phrases)
    await session.commit()
    return product_out(product)


@router.get("/admin/products", response_model=TabbedPage[AdminProductOut])
async def review_queue(
    _reviewer: Reviewer,
    session: SessionDep,
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


@router.post("/admin/products/{product_id}/approve", response_model=ProductOut)
async def approve(
    product: ReviewedProduct, reviewer: Reviewer, session: SessionDep, body: ReviewDecisionIn | None = None
) -> ProductOut:
    await service.review(session, reviewer, product, rules.Action.APPROVE, body.reason if body else None)
    await session.commit()
    return product_out(product)


@router.post("/admin/products/{product_id}/reject", response_model=ProductOut)
async def reject(
    product: ReviewedProduct, reviewer: Reviewer, session: SessionDep, body: ReviewDecisionIn | None = None
) -> ProductOut:
    await service.review(session, reviewer, product, rules.Action.REJECT, body.reason if body else None)
    await session.commit()
    return product_out(product)
