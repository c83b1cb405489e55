"""Demo data (development only, ``QUOTA_SEED_DEMO``): the 2024 campaign of the manual as
history, a current-year campaign with the same rules whose windows cover the whole year, a
few designations (the demo enterprise on a 10万 list), and the demo enterprise's approved
general voucher. Idempotent: a second start adds nothing."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common import demo
from common.categories import GENERAL
from common.numbers import shanghai_now
from common.orgs import OrgCopy
from common.timers import utcnow
from quota.domain.applications import tier_for
from quota.domain.campaigns import BASE_DESIGNATION, WINDOWS_2024, campaign_spec
from quota.models import Campaign, Designation, QuotaApplication
from quota.service.applications import issue
from quota.service.campaigns import put_campaign, types_of

log = structlog.get_logger(__name__)

DEMO_DESIGNATIONS = (
    (demo.ENTERPRISE.uscc, "创新型中小企业"),  # 10万
    (demo.ENTERPRISE.uscc, BASE_DESIGNATION),
    (demo.PROVIDER.uscc, BASE_DESIGNATION),
)


async def seed_demo(session: AsyncSession) -> None:
    year = shanghai_now().year
    for y, windows in ((2024, WINDOWS_2024), (year, None)):
        if await session.get(Campaign, y) is None:
            await put_campaign(session, y, campaign_spec(y, windows))
    await session.execute(
        pg_insert(Designation)
        .values([{"uscc": u, "designation": d} for u, d in DEMO_DESIGNATIONS])
        .on_conflict_do_nothing()
    )
    e = demo.ENTERPRISE
    await session.execute(
        pg_insert(OrgCopy)
        .values(org_id=e.id, name=e.name, uscc=e.uscc, kind=e.kind, certified=True)
        .on_conflict_do_nothing()
    )
    existing = (
        await session.exec(
            select(QuotaApplication).where(
                col(QuotaApplication.enterprise_id) == e.id,
                col(QuotaApplication.campaign_year) == year,
                col(QuotaApplication.voucher_type) == GENERAL,
            )
        )
    ).first()
    if existing is None:
        campaign = await session.get(Campaign, year)
        assert campaign is not None
        tier = tier_for([d for u, d in DEMO_DESIGNATIONS if u == e.uscc], campaign.tiers)
        assert tier is not None
        app = QuotaApplication(
            id=str(uuid.uuid4()),
            enterprise_id=e.id,
            enterprise_name=e.name,
            uscc=e.uscc,
            campaign_year=year,
            voucher_type=GENERAL,
            tier=tier.designation,
            tier_fen=tier.amount_fen,
            reason="演示数据",
        )
        session.add(app)
        await session.flush()
        kind = (await types_of(session, year))[GENERAL]
        voucher = await issue(session, app, kind, tier.amount_fen, tier.designation)
        app.state, app.approved_fen, app.voucher_id, app.reviewed_at = (
            "approved",
            tier.amount_fen,
            voucher.id,
            utcnow(),
        )
        session.add(app)
        log.info("demo_voucher_issued", voucher_no=voucher.voucher_no, total_fen=voucher.total_fen)
