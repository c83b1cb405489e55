"""Data migrations on a database that holds rows written by the previous code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import catalog
from common.db import alembic_config, ensure_database
from common.settings import to_asyncpg_url
from common.testing.infra import MakeDb

MIGRATIONS = Path(catalog.__file__).parent / "migrations"


async def test_provider_applications_awaiting_review_are_rewritten_to_pending_review(
    fresh_db: MakeDb,
) -> None:
    url = await fresh_db("catalog_migration")
    await ensure_database(url)
    cfg = alembic_config(MIGRATIONS, url)
    await asyncio.to_thread(command.upgrade, cfg, "0005_idempotency_claim_token")
    engine = create_async_engine(to_asyncpg_url(url))
    insert = text(
        "INSERT INTO provider_applications (id, org_id, org_name, applicant_id, profile, contact_name, contact_phone,"
        " address, working_hours, state) VALUES (:id, :org, 'n', 'u', 'p', 'c', '13800000000', 'a', 'h', :state)"
    )
    try:
        async with engine.begin() as conn:
            for id_, org, state in (
                ("a1", "o1", "pending"),
                ("a2", "o2", "approved"),
                ("a3", "o3", "rejected"),
            ):
                await conn.execute(insert, {"id": id_, "org": org, "state": state})

        await asyncio.to_thread(command.upgrade, cfg, "head")

        async with engine.begin() as conn:
            states = dict((await conn.execute(text("SELECT id, state FROM provider_applications"))).all())
            assert states == {"a1": "pending_review", "a2": "approved", "a3": "rejected"}
            # the one-awaiting-review-per-organisation index follows the new word
            index = (
                await conn.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_provider_applications_pending'"
                    )
                )
            ).scalar_one()
            assert "pending_review" in index
        await asyncio.to_thread(command.downgrade, cfg, "0005_idempotency_claim_token")
        async with engine.begin() as conn:
            states = dict((await conn.execute(text("SELECT id, state FROM provider_applications"))).all())
            assert states["a1"] == "pending"
    finally:
        await engine.dispose()
