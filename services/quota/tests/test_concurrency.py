"""Races decided by the database: many reservations at once on one voucher never reserve more
than its balance, and many against one provider's cap never exceed the cap; the journal adds
up to the balances afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from common.events import VoucherReservationRejected, VoucherReserved
from quota.models import ProviderCap, Voucher
from quota.service import vouchers as ledger
from quota.testing import Quota, journal_adds_up, submitted

pytestmark = pytest.mark.parametrize("transport_kind", ["inprocess"])

DEFAULT_CAP = 500_000_000


async def reserve_all(q: Quota, events: list) -> list:
    at = datetime.now(UTC)

    async def one(event):
        async with q.db.transaction() as s:
            return await ledger.reserve_for_order(s, event, at, default_cap_fen=DEFAULT_CAP)

    return await asyncio.gather(*(one(e) for e in events))


async def test_200_concurrent_reservations_on_one_voucher_never_reserve_more_than_its_balance(
    quota: Quota,
) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 500_000)  # 5000元: room for 131 orders of 38元 and a part
    events = [submitted(str(ent.org_id)) for _ in range(200)]
    events.append(events[0])  # and one order delivered twice, racing itself
    results = await reserve_all(quota, events)

    reserved = [r for r in results if isinstance(r, VoucherReserved)]
    rejected = [r for r in results if isinstance(r, VoucherReservationRejected)]
    assert sum(r.amount_fen for r in reserved) == 500_000
    assert Counter(r.amount_fen for r in reserved) == Counter({3800: 131, 2200: 1})
    assert {r.reason_code for r in rejected} == {"nothing_left"} and len(rejected) == 200 - 132
    assert results.count(None) == 1  # the repeat changed nothing
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.reserved_fen) == (0, 500_000)
    held = await quota.scalar("SELECT sum(amount_fen) FROM voucher_reservations WHERE state = 'reserved'")
    assert held == v.reserved_fen


async def test_reservations_and_releases_interleaved_on_one_voucher_keep_the_invariant(quota: Quota) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 200_000)
    first = [submitted(str(ent.org_id)) for _ in range(40)]
    await reserve_all(quota, first)

    async def release(event):
        async with quota.db.transaction() as s:
            return await ledger.release_for_order(s, event.order_id, "取消", wait_for_submission=False)

    second = [submitted(str(ent.org_id)) for _ in range(40)]
    at = datetime.now(UTC)

    async def reserve(event):
        async with quota.db.transaction() as s:
            return await ledger.reserve_for_order(s, event, at, default_cap_fen=DEFAULT_CAP)

    await asyncio.gather(
        *(release(e) for e in first), *(reserve(e) for e in second), *(release(e) for e in first)
    )
    v = await journal_adds_up(quota, voucher.id)
    held = await quota.scalar(
        "SELECT coalesce(sum(amount_fen), 0) FROM voucher_reservations WHERE state = 'reserved'"
    )
    assert v.reserved_fen == held and v.remaining_fen + v.reserved_fen == 200_000
    releases = await quota.scalar("SELECT count(*) FROM voucher_movements WHERE kind = 'release'")
    assert releases == 40  # each first order released once, though two releases raced for it


async def test_50_concurrent_reservations_against_one_providers_cap_never_exceed_it(quota: Quota) -> None:
    async with quota.db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO provider_subsidy_caps (provider_id, year, cap_fen) VALUES ('prov-1', :y, 100000)"
            ),
            {"y": quota.year},
        )
    events = []
    vouchers = []
    for _ in range(50):
        ent = await quota.certified()
        vouchers.append(await quota.voucher(str(ent.org_id), 5_000_000))
        events.append(submitted(str(ent.org_id)))
    results = await reserve_all(quota, events)

    reserved = [r for r in results if isinstance(r, VoucherReserved)]
    rejected = [r for r in results if isinstance(r, VoucherReservationRejected)]
    cap = await quota.row(ProviderCap, ("prov-1", quota.year))
    assert cap.reserved_fen + cap.used_fen <= cap.cap_fen == 100_000
    assert sum(r.amount_fen for r in reserved) == cap.reserved_fen == 100_000
    assert Counter(r.amount_fen for r in reserved) == Counter({3800: 26, 1200: 1})
    assert {r.reason_code for r in rejected} == {"provider_cap_reached"} and len(rejected) == 23
    for v in vouchers:
        await journal_adds_up(quota, v.id)
    total_reserved = await quota.scalar("SELECT sum(reserved_fen) FROM vouchers")
    assert total_reserved == 100_000
    assert (await quota.row(Voucher, vouchers[0].id)).total_fen == 5_000_000
