"""服务券配额申请 and their review; approval issues (or, for a special type, tops up) the voucher."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common import timers
from common.audit import audit
from common.auth import Principal
from common.bus import emit
from common.categories import GENERAL
from common.db import lock
from common.events import QuotaApplicationApproved, QuotaApplicationRejected
from common.files import check_files
from common.internal import ServiceClients
from common.numbers import VOUCHER_PREFIX, next_number
from common.orgs import require_active
from common.rules import Refusal
from common.timers import utcnow
from quota import errors
from quota.domain import applications as rules
from quota.domain.campaigns import window_closed, window_end
from quota.models import Campaign, CampaignType, Designation, QuotaApplication, Voucher
from quota.service.vouchers import EXPIRY_TIMER, must_move


async def designations_of(session: AsyncSession, uscc: str | None) -> list[str]:
    if not uscc:
        return []
    rows = await session.exec(select(Designation.designation).where(col(Designation.uscc) == uscc))
    return list(rows.all())


async def approved_total(session: AsyncSession, enterprise_id: str, year: int, voucher_type: str) -> int:
    total = (
        await session.exec(
            select(func.coalesce(func.sum(QuotaApplication.approved_fen), 0)).where(
                col(QuotaApplication.enterprise_id) == enterprise_id,
                col(QuotaApplication.campaign_year) == year,
                col(QuotaApplication.voucher_type) == voucher_type,
                col(QuotaApplication.state) == "approved",
            )
        )
    ).one()
    return int(total or 0)


async def _serialise(session: AsyncSession, enterprise_id: str, year: int, voucher_type: str) -> None:
    """Applications and approvals of one enterprise, year and type take turns (the cap check
    reads a sum, so two of them must not decide on the same sum at once)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
        {"k": f"quota:{enterprise_id}:{year}:{voucher_type}"},
    )


async def apply(
    session: AsyncSession,
    clients: ServiceClients,
    principal: Principal,
    campaign: Campaign,
    kinds: dict[str, CampaignType],
    body: dict[str, Any],
) -> QuotaApplication:
    # The name, USCC (hence the tier) and suspension as they are now: identity's answer when
    # quota's copy is behind the caller's token (a certification still in flight).
    org = await require_active(session, principal, clients)
    voucher_type = body["voucher_type"]
    kind = kinds.get(voucher_type)
    if kind is None:
        raise errors.voucher_type_closed()
    enterprise_id = str(principal.org_id)
    await _serialise(session, enterprise_id, campaign.year, voucher_type)
    app = QuotaApplication(
        id=str(uuid.uuid4()),
        enterprise_id=enterprise_id,
        enterprise_name=org.name if org else "",
        uscc=org.uscc if org else None,
        campaign_year=campaign.year,
        voucher_type=voucher_type,
    )
    if voucher_type == GENERAL:
        tier = rules.tier_for(await designations_of(session, app.uscc), campaign.tiers)
        if tier is None:
            app.flagged = True
        else:
            app.tier, app.tier_fen = tier.designation, tier.amount_fen
        try:
            async with session.begin_nested():
                session.add(app)
                await session.flush()
        except IntegrityError:
            raise errors.general_already_applied() from None
        return app
    requested, basis, proofs = (
        body.get("requested_fen"),
        body.get("basis_fen"),
        body.get("proof_file_ids") or [],
    )
    if requested is None or basis is None or not proofs:
        raise errors.special_fields_required()
    cap_left = kind.yearly_cap_fen - await approved_total(session, enterprise_id, campaign.year, voucher_type)
    try:
        rules.check_special_request(requested, basis, kind.basis_share_bp or 0, cap_left)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    await check_files(clients, proofs, org_id=enterprise_id, field="proof_file_ids")
    app.requested_fen, app.basis_fen, app.proof_file_ids = requested, basis, list(proofs)
    session.add(app)
    await session.flush()
    return app


async def locked_application(session: AsyncSession, application_id: str) -> QuotaApplication:
    app = await lock(session, QuotaApplication, application_id)
    if app is None:
        raise errors.application_not_found()
    if app.state != "pending_review":
        raise errors.application_decided()
    return app


async def locked_voucher_of(session: AsyncSession, app: QuotaApplication) -> Voucher | None:
    """The enterprise's voucher of the application's campaign and type (what an approval
    tops up), locked; None before the first approval."""
    return (
        await session.exec(
            select(Voucher)
            .where(
                col(Voucher.enterprise_id) == app.enterprise_id,
                col(Voucher.campaign_year) == app.campaign_year,
                col(Voucher.voucher_type) == app.voucher_type,
            )
            .with_for_update()
        )
    ).first()


async def issue(
    session: AsyncSession, app: QuotaApplication, kind: CampaignType, amount: int, tier: str | None
) -> Voucher:
    """Issue the voucher (or top up the enterprise's voucher of this type) by ``amount``."""
    voucher = await locked_voucher_of(session, app)
    if voucher is None:
        voucher = Voucher(
            id=str(uuid.uuid4()),
            voucher_no=await next_number(session, VOUCHER_PREFIX),
            enterprise_id=app.enterprise_id,
            enterprise_name=app.enterprise_name,
            campaign_year=app.campaign_year,
            voucher_type=app.voucher_type,
            tier=tier,
            ratio_bp=kind.ratio_bp,
            valid_from=kind.valid_from,
            valid_to=kind.valid_to,
        )
        session.add(voucher)
        await session.flush()
        await timers.schedule(
            session, EXPIRY_TIMER, voucher.id, window_end(voucher.valid_to), {"voucher_id": voucher.id}
        )
    elif app.enterprise_name and voucher.enterprise_name != app.enterprise_name:
        voucher.enterprise_name = app.enterprise_name  # a top-up: the name as now certified
        session.add(voucher)
    await must_move(session, voucher.id, "issue", amount, note=f"配额申请 {app.id}")
    await session.refresh(voucher)
    return voucher


async def approve(
    session: AsyncSession,
    actor: Principal,
    application_id: str,
    campaign: Campaign,
    kind: CampaignType,
    approved_fen: int | None,
    reason: str | None,
    now: datetime | None = None,
) -> QuotaApplication:
    app = await locked_application(session, application_id)
    await _serialise(session, app.enterprise_id, app.campaign_year, app.voucher_type)
    now = now or utcnow()
    # No quota after the window: the voucher's own window once issued (it was copied from
    # the campaign then), else the campaign's. Staff reject such an application instead.
    existing = await locked_voucher_of(session, app)
    valid_to = existing.valid_to if existing is not None else kind.valid_to
    if window_closed(valid_to, now) or (existing is not None and existing.expired_at is not None):
        raise errors.voucher_window_closed(valid_to)
    tier: str | None
    if app.voucher_type == GENERAL:
        if app.flagged:
            if not (reason or "").strip():
                raise errors.reason_required()
            base = rules.base_tier(campaign.tiers)
            tier, amount = base.designation, base.amount_fen
        else:
            tier, amount = app.tier, int(app.tier_fen or 0)
    else:
        if approved_fen is None:
            raise errors.approved_amount_required()
        cap_left = kind.yearly_cap_fen - await approved_total(
            session, app.enterprise_id, app.campaign_year, app.voucher_type
        )
        try:
            rules.check_approved_amount(approved_fen, int(app.requested_fen or 0), cap_left)
        except Refusal as refusal:
            raise errors.from_refusal(refusal) from None
        tier, amount = None, approved_fen
    voucher = await issue(session, app, kind, amount, tier)
    app.state, app.approved_fen, app.reason, app.voucher_id = "approved", amount, reason, voucher.id
    app.tier = app.tier or tier
    app.reviewer_id, app.reviewed_at = actor.user_id, now
    session.add(app)
    audit(
        session,
        actor,
        "quota_application.approve",
        "quota_application",
        app.id,
        reason=reason,
        enterprise_id=app.enterprise_id,
        voucher_type=app.voucher_type,
        approved_fen=amount,
        flagged=app.flagged,
        voucher_no=voucher.voucher_no,
    )
    await emit(
        session,
        QuotaApplicationApproved(
            application_id=app.id,
            enterprise_id=app.enterprise_id,
            voucher_type=app.voucher_type,
            approved_fen=amount,
            voucher_id=voucher.id,
            voucher_no=voucher.voucher_no,
            reason=reason,
        ),
        aggregate_id=app.id,
    )
    await session.flush()
    return app


async def reject(
    session: AsyncSession, actor: Principal, application_id: str, reason: str
) -> QuotaApplication:
    app = await locked_application(session, application_id)
    app.state, app.reason = "rejected", reason
    app.reviewer_id, app.reviewed_at = actor.user_id, utcnow()
    session.add(app)
    audit(
        session,
        actor,
        "quota_application.reject",
        "quota_application",
        app.id,
        reason=reason,
        enterprise_id=app.enterprise_id,
        voucher_type=app.voucher_type,
    )
    await emit(
        session,
        QuotaApplicationRejected(
            application_id=app.id,
            enterprise_id=app.enterprise_id,
            voucher_type=app.voucher_type,
            reason=reason,
        ),
        aggregate_id=app.id,
    )
    await session.flush()
    return app
