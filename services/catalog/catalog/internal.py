"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from catalog import errors
from catalog.domain.products import Status
from catalog.models import Product, Provider
from catalog.service import listing
from common.app import SessionDep
from common.auth import InternalCaller
from common.orgs import is_suspended
from common.reads import PortalStats, ProductFacts

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/products/{product_id}", response_model=ProductFacts)
async def product(
    product_id: Annotated[str, Path(max_length=64)], _caller: InternalCaller, session: SessionDep
) -> ProductFacts:
    """A product's current sellable facts, for orders at submission and quota's quote
    (the contract: common.reads.ProductFacts), and its provider's contact (联系人 and 服务电话, the
    public hotline) that orders keeps on the order for the enterprise. Unknown: 404."""
    row = await session.get(Product, product_id)
    if row is None:
        raise errors.product_not_found()
    provider = await session.get(Provider, row.provider_id)
    return ProductFacts(
        id=row.id,
        name=row.name,
        category=row.category,
        provider_id=row.provider_id,
        provider_name=provider.name if provider else "",
        provider_contact_name=provider.contact_name if provider else "",
        provider_contact_phone=provider.contact_phone if provider else "",
        platform_price_fen=row.platform_price_fen,
        market_price_fen=row.market_price_fen,
        max_subsidy_fen=row.max_subsidy_fen,
        status=row.status,
        listed=row.status == Status.LISTED,
        provider_suspended=await is_suspended(session, row.provider_id),
    )


@router.get("/stats", response_model=PortalStats)
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures catalog owns (common.registry: products = listed products of
    unsuspended providers, what the public listing shows)."""
    return PortalStats({"products": await listing.stats(session)})
