"""The public portal's reads: the listing and its search, a product's detail (visits counted,
the caller's voucher preview from quota), an organisation's page, categories, favourites.

A product is public when it is listed and its provider is not suspended (catalog's copy of
the organisation, from identity's events): a suspended provider's products leave the
listing at once and come back on restoration, without any product changing its status.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import and_, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog.domain.products import Status
from catalog.models import SEARCH_BIGRAMS, SEARCH_TEXT, Product, Provider
from catalog.schemas.listing import ListingItem, VoucherPreview
from common.auth import MEMBER_ROLES, Principal
from common.categories import (
    EQUIPMENT_LEASING,
    FINANCING_GUARANTEE,
    GENERAL,
    VOUCHER_TYPES,
    categories_for,
    voucher_type_for,
)
from common.db import escape_like
from common.errors import Problem
from common.internal import ServiceClients
from common.orgs import OrgCopy
from common.pagination import PageParams
from common.reads import Quote

log = structlog.get_logger(__name__)

SORTS = {
    "sales": col(Product.sales),
    "price": col(Product.platform_price_fen),
    "revenue": col(Product.revenue_fen),
}

# The portal's two listings: 通用券服务 and 设备更新专项券服务 (the special types).
LISTING_CATEGORIES: dict[str, tuple[str, ...]] = {
    GENERAL: categories_for(GENERAL),
    "special": categories_for(FINANCING_GUARANTEE) + categories_for(EQUIPMENT_LEASING),
    FINANCING_GUARANTEE: categories_for(FINANCING_GUARANTEE),
    EQUIPMENT_LEASING: categories_for(EQUIPMENT_LEASING),
}


def provider_active() -> ColumnElement[bool]:
    """No copy of the organisation says it is suspended."""
    return ~(
        select(OrgCopy.org_id)
        .where(col(OrgCopy.org_id) == col(Product.provider_id), col(OrgCopy.suspended).is_(True))
        .exists()
    )


def public() -> list[ColumnElement[bool]]:
    return [col(Product.status) == Status.LISTED, provider_active()]


def keyword(q: str) -> ColumnElement[bool]:
    """``q`` as a substring of the name or the description, case-insensitively.

    Two characters (专利, 诊断: many Chinese keywords) are one element of the stored bigram
    array (its GIN index answers exactly "contains this substring"); three and more use the
    trigram index of the lowered text (pg_trgm extracts no trigram from two characters).
    """
    needle = q.lower()
    if len(needle) == 2:
        return SEARCH_BIGRAMS.contains([needle])
    return SEARCH_TEXT.like(f"%{escape_like(needle)}%", escape="\\")


def listing_conditions(
    *,
    category: str | None = None,
    voucher_type: str | None = None,
    q: str | None = None,
    min_price_fen: int | None = None,
    max_price_fen: int | None = None,
    provider_id: str | None = None,
) -> list[ColumnElement[bool]]:
    conditions = public()
    if category:
        conditions.append(col(Product.category) == category)
    if voucher_type:
        conditions.append(col(Product.category).in_(LISTING_CATEGORIES[voucher_type]))
    if q:
        conditions.append(keyword(q))
    if min_price_fen is not None:
        conditions.append(col(Product.platform_price_fen) >= min_price_fen)
    if max_price_fen is not None:
        conditions.append(col(Product.platform_price_fen) <= max_price_fen)
    if provider_id:
        conditions.append(col(Product.provider_id) == provider_id)
    return conditions


# What a listing row shows: plain columns, no ORM objects (the listing is the hot read).
LISTING_COLUMNS: tuple[Any, ...] = (
    col(Product.id),
    col(Product.name),
    col(Product.category),
    col(Product.provider_id),
    col(Provider.name).label("provider_name"),
    col(Product.platform_price_fen),
    col(Product.market_price_fen),
    col(Product.max_subsidy_fen),
    col(Product.sales),
    col(Product.revenue_fen),
    col(Product.rating_sum),
    col(Product.rating_count),
)


def listing_query(conditions: list[ColumnElement[bool]], sort: str | None = None, order: str = "desc") -> Any:
    """The page's rows; without ``sort``, the newest listings first."""
    key = SORTS.get(sort or "", col(Product.listed_at))
    ordering = [key.asc(), col(Product.id).asc()] if order == "asc" else [key.desc(), col(Product.id).desc()]
    return (
        sa_select(*LISTING_COLUMNS)
        .join(Provider, col(Provider.org_id) == col(Product.provider_id))
        .where(and_(*conditions))
        .order_by(*ordering)
    )


def row_item(row: Any) -> ListingItem:
    values = dict(row._mapping)
    rating_sum, rating_count = values.pop("rating_sum"), values.pop("rating_count")
    return ListingItem.model_validate(
        {
            **values,
            "voucher_type": voucher_type_for(values["category"]),
            "rating": round(rating_sum / rating_count, 1) if rating_count else None,
        }
    )


async def listing_page(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    paging: PageParams,
    sort: str | None = None,
    order: str = "desc",
) -> tuple[int, list[ListingItem]]:
    """(total, items). A page that is not full ends the list, so its total is known without
    counting (most keyword searches); otherwise the total counts products alone (every
    product has its provider's row: only an approved provider creates products), an
    index-only count."""
    query = listing_query(conditions, sort, order).offset(paging.offset).limit(paging.page_size)
    rows = list((await session.execute(query)).all())
    if 0 < len(rows) < paging.page_size or (not rows and paging.offset == 0):
        return paging.offset + len(rows), [row_item(r) for r in rows]
    total = (await session.exec(select(func.count()).select_from(Product).where(and_(*conditions)))).one()
    return int(total), [row_item(r) for r in rows]


def item(product: Product, provider_name: str, model: type[ListingItem] = ListingItem, **extra: Any) -> Any:
    """``model`` (a listing item or one of its extensions) of a product row."""
    fields = {name: getattr(product, name) for name in model.model_fields if hasattr(Product, name)}
    return model.model_validate(
        {
            **fields,
            "rating": product.rating,
            "voucher_type": voucher_type_for(product.category),
            "provider_name": provider_name,
            **extra,
        }
    )


async def is_visible(session: AsyncSession, product_id: str) -> bool:
    query = select(col(Product.id)).where(col(Product.id) == product_id, *public())
    return (await session.exec(query)).first() is not None


async def listed_count(session: AsyncSession, provider_id: str) -> int:
    query = (
        select(func.count()).select_from(Product).where(col(Product.provider_id) == provider_id, *public())
    )
    return int((await session.exec(query)).one())


async def count_visit(session: AsyncSession, product_id: str) -> int:
    """访问次数 +1, atomically (the row lock of the UPDATE itself); returns the new count."""
    stmt = (
        update(Product)
        .where(col(Product.id) == product_id)
        .values(visits=col(Product.visits) + 1)
        .returning(col(Product.visits))
    )
    return int((await session.execute(stmt)).scalar_one())


def own_member(principal: Principal | None, provider_id: str) -> bool:
    return principal is not None and principal.org_id == provider_id and principal.role in MEMBER_ROLES


async def voucher_preview(
    clients: ServiceClients, principal: Principal | None, product: Product
) -> VoucherPreview | None:
    """The caller's voucher on this product as quota quotes it; None without a certified
    enterprise caller, without a usable voucher, or when quota cannot answer now."""
    if principal is None or principal.role not in MEMBER_ROLES or not principal.can("enterprise"):
        return None
    if principal.org_id == product.provider_id:
        return None
    try:
        quote = await clients.read(
            "quota",
            "/internal/quote",
            Quote,
            enterprise_id=principal.org_id,
            provider_id=product.provider_id,
            category=product.category,
            price_fen=product.platform_price_fen,
            max_subsidy_fen=product.max_subsidy_fen,
        )
    except Problem:  # quota down, or its answer not the contract (logged by the client)
        log.warning("voucher_preview_unavailable", product_id=product.id)
        return None
    if quote is None:
        return None
    try:
        voucher_type = quote.voucher_type or voucher_type_for(product.category)
    except ValueError:
        log.warning("voucher_preview_malformed", product_id=product.id)
        return None
    subsidy = max(0, min(quote.subsidy_fen, product.platform_price_fen))
    return VoucherPreview(
        voucher_type=voucher_type,
        voucher_type_label=VOUCHER_TYPES.get(voucher_type, voucher_type),
        voucher_no=quote.voucher_no,
        subsidy_fen=subsidy,
        price_after_fen=product.platform_price_fen - subsidy,
        max_subsidy_fen=product.max_subsidy_fen,
        valid_from=quote.valid_from,
        valid_to=quote.valid_to,
    )


async def category_counts(session: AsyncSession) -> dict[str, int]:
    query = select(col(Product.category), func.count()).where(*public()).group_by(col(Product.category))
    return {str(c): int(n) for c, n in (await session.exec(query)).all()}


async def stats(session: AsyncSession) -> int:
    query = select(func.count()).select_from(Product).where(*public())
    return int((await session.exec(query)).one())
