"""Service products: create, edit, submit, unlist, relist (the provider), approve and reject
(the reviewers). Every change of a product's sellable snapshot publishes
``catalog.product_changed`` (aggregate: the product) in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog import errors
from catalog.domain import products as rules
from catalog.models import Product, Provider
from catalog.schemas.products import ProductIn
from common import bus
from common.audit import audit
from common.auth import Principal
from common.categories import CATEGORIES
from common.events import ProductChanged, ProductReviewed
from common.rules import Refusal
from common.timers import utcnow


def figures(p: Product | ProductIn) -> rules.Figures:
    return rules.Figures(p.market_price_fen, p.platform_price_fen, p.max_subsidy_fen)


def snapshot(p: Product) -> tuple[object, ...]:
    """What other services sell by (orders follows it): changes publish product_changed."""
    return (p.name, p.category, p.platform_price_fen, p.market_price_fen, p.max_subsidy_fen, p.status)


def check_input(body: ProductIn) -> None:
    if body.category not in CATEGORIES:
        raise errors.unknown_category()
    try:
        rules.check_price(figures(body))
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None


def flags_for(p: Product | ProductIn, banned: Sequence[str]) -> list[rules.Flag]:
    return rules.pre_review(
        name=p.name,
        description=p.description,
        deliverables=p.deliverables,
        acceptance_criteria=p.acceptance_criteria,
        banned_phrases=banned,
    )


async def changed(session: AsyncSession, product: Product, provider: Provider | None = None) -> None:
    provider = provider or await session.get(Provider, product.provider_id)
    await bus.emit(
        session,
        ProductChanged(
            product_id=product.id,
            provider_id=product.provider_id,
            name=product.name,
            category=product.category,
            price_fen=product.platform_price_fen,
            market_price_fen=product.market_price_fen,
            max_subsidy_fen=product.max_subsidy_fen,
            listed=product.status == rules.Status.LISTED,
            status=product.status,
            provider_name=provider.name if provider else "",
            provider_contact_name=provider.contact_name if provider else "",
            provider_contact_phone=provider.contact_phone if provider else "",
        ),
        aggregate_id=product.id,
    )


async def provider_changed(session: AsyncSession, provider: Provider) -> None:
    """The provider's name or contacts changed: each of its products' snapshots again, so
    the copies orders sells from name the provider as catalog shows it."""
    for product in await session.exec(select(Product).where(col(Product.provider_id) == provider.org_id)):
        await changed(session, product, provider)


async def create(session: AsyncSession, provider_id: str, body: ProductIn, banned: Sequence[str]) -> Product:
    check_input(body)
    product = Product(provider_id=provider_id, **body.model_dump())
    product.review_flags = [f.as_dict() for f in flags_for(body, banned)]
    session.add(product)
    await session.flush()
    await changed(session, product)
    return product


async def edit(session: AsyncSession, product: Product, body: ProductIn, banned: Sequence[str]) -> Product:
    """Edit a product (locked by the caller). A listed product whose price or max subsidy
    changes, or that now raises a new pre-review flag, leaves the listing for review."""
    check_input(body)
    before = snapshot(product)
    new_flags = flags_for(body, banned)
    target = rules.status_after_edit(
        product.status,
        figures_changed=rules.figures_changed(figures(product), figures(body)),
        new_flags=rules.raises_new_flags(product.review_flags, new_flags),
    )
    for key, value in body.model_dump().items():
        setattr(product, key, value)
    product.review_flags = [f.as_dict() for f in new_flags]
    if target != product.status:
        product.status = target
        product.submitted_at = utcnow()
    product.updated_at = utcnow()
    session.add(product)
    if snapshot(product) != before:
        await changed(session, product)
    return product


async def act(
    session: AsyncSession, product: Product, action: rules.Action, banned: Sequence[str]
) -> Product:
    """submit / unlist / relist by the provider (the product locked by the caller)."""
    try:
        target = rules.transition(product.status, action)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    now = utcnow()
    if action is rules.Action.SUBMIT:
        product.review_flags = [f.as_dict() for f in flags_for(product, banned)]
        product.reject_reason = None
        product.submitted_at = now
    elif action is rules.Action.RELIST:
        approved = rules.Figures(**product.approved_snapshot) if product.approved_snapshot else None
        target = rules.relist_target(approved, figures(product))
        if target is rules.Status.PENDING_REVIEW:
            product.review_flags = [f.as_dict() for f in flags_for(product, banned)]
            product.submitted_at = now
        else:
            product.listed_at = now
    product.status = target
    product.updated_at = now
    session.add(product)
    await changed(session, product)
    return product


async def review(
    session: AsyncSession,
    reviewer: Principal,
    product: Product,
    action: rules.Action,
    reason: str | None,
) -> Product:
    """approve / reject a product pending review (locked by the caller); audited."""
    if action is rules.Action.REJECT and not reason:
        raise errors.reason_required()
    try:
        target = rules.transition(product.status, action)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    now = utcnow()
    product.status = target
    product.updated_at = now
    if action is rules.Action.APPROVE:
        product.reject_reason = None
        product.listed_at = now
        product.approved_snapshot = figures(product).as_dict()
    else:
        product.reject_reason = reason
    session.add(product)
    audit(
        session,
        reviewer,
        f"product.{action.value}",
        "product",
        product.id,
        reason=reason,
        provider_id=product.provider_id,
        flags=[f["code"] for f in product.review_flags],
        platform_price_fen=product.platform_price_fen,
        max_subsidy_fen=product.max_subsidy_fen,
    )
    await changed(session, product)
    await bus.emit(
        session,
        ProductReviewed(
            product_id=product.id,
            provider_id=product.provider_id,
            name=product.name,
            approved=action is rules.Action.APPROVE,
            reason=reason,
        ),
        aggregate_id=product.id,
    )
    return product
