"""``voucher-payments check-invariants`` reads payments' database and says what is broken."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from payments.cli import main


async def test_the_invariants_command_passes_a_sound_database_and_names_a_broken_plan(deal_factory) -> None:
    deal = await deal_factory()
    await deal.confirmed(800)
    url = str(deal.h.db("payments").url)
    assert await asyncio.to_thread(main, ["check-invariants", "--database-url", url]) == 0
    async with deal.h.db("payments").transaction() as s:  # a paid figure that no remittance explains
        await s.execute(
            text("UPDATE payment_plans SET paid_fen = 900 WHERE order_id = :o"), {"o": deal.order_id}
        )
    assert await asyncio.to_thread(main, ["check-invariants", "--database-url", url]) == 1
    async with deal.h.db("payments").transaction() as s:
        await s.execute(
            text("UPDATE payment_plans SET paid_fen = 800 WHERE order_id = :o"), {"o": deal.order_id}
        )
