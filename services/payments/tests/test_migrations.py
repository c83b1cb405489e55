"""Data migrations on a database that holds rows written by the previous code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import payments
from common.db import alembic_config, ensure_database
from common.settings import to_asyncpg_url
from common.testing.infra import MakeDb

MIGRATIONS = Path(payments.__file__).parent / "migrations"

ROWS = (
    "INSERT INTO org_copies (org_id, name) VALUES ('e1', '广西甲制造有限公司'), ('p1', '广西乙服务有限公司')",
    "INSERT INTO payment_plans (order_id, order_no, contract_id, enterprise_id, provider_id, total_fen,"
    " subsidy_fen, payable_fen, deposit_fen, balance_fen, paid_fen, pending_fen, state)"
    " VALUES ('o1', 'ORD1', 'c1', 'e1', 'p1', 5000, 1000, 4000, 800, 3200, 0, 400, 'open')",
    "INSERT INTO remittances (id, order_id, enterprise_id, provider_id, amount_fen, bank_reference,"
    " payer_account, payee_account_name, payee_account_number, state, recorded_by)"
    " VALUES ('r1', 'o1', 'e1', 'p1', 400, 'B1', 'A1', 'n', '1', 'pending', 'u1')",
    "INSERT INTO settlement_claims (id, order_id, order_no, enterprise_id, provider_id, amount_fen, state)"
    " VALUES ('s1', 'o1', 'ORD1', 'e1', 'p1', 1000, 'open')",
)


async def test_rows_made_before_the_names_take_them_from_the_organisation_copies(fresh_db: MakeDb) -> None:
    url = await fresh_db("payments_migration")
    await ensure_database(url)
    cfg = alembic_config(MIGRATIONS, url)
    await asyncio.to_thread(command.upgrade, cfg, "0005_idempotency_claim_token")
    engine = create_async_engine(to_asyncpg_url(url))
    try:
        async with engine.begin() as conn:
            for sql in ROWS:
                await conn.execute(text(sql))

        await asyncio.to_thread(command.upgrade, cfg, "head")

        async with engine.begin() as conn:
            for table in ("payment_plans", "remittances", "settlement_claims"):
                names = (
                    await conn.execute(text(f"SELECT enterprise_name, provider_name FROM {table}"))
                ).one()
                assert tuple(names) == ("广西甲制造有限公司", "广西乙服务有限公司"), table
            assert (await conn.execute(text("SELECT order_no FROM remittances"))).scalar_one() == "ORD1"
    finally:
        await engine.dispose()
