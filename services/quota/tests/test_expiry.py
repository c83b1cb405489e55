"""Vouchers across time: at the end of its window a voucher's unreserved remainder expires
(a durable timer, safe to run twice, in the journal); reservations made inside the window
stay valid until their orders resolve; what a later release frees expires too."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from common.events import OrderCancelled
from common.numbers import shanghai_now
from quota import domain
from quota.models import Reservation, Voucher
from quota.service.vouchers import EXPIRY_TIMER, expire_voucher
from quota.testing import API, Quota, journal_adds_up, signed, submitted

pytestmark = pytest.mark.parametrize(
    "transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"]
)


async def test_a_window_that_has_closed_expires_the_remainder_by_its_timer_once(quota: Quota) -> None:
    ent = await quota.certified()
    yesterday = shanghai_now().date() - timedelta(days=1)
    voucher = await quota.voucher(str(ent.org_id), 5_000_000, valid_from=yesterday, valid_to=yesterday)
    await quota.h.eventually(lambda: _expired(quota, voucher.id), within=10)
    async with quota.db.transaction() as s:
        assert await expire_voucher(s, voucher.id) == 0  # a second run finds nothing left
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.expired_fen) == (0, 5_000_000)
    assert await quota.scalar("SELECT count(*) FROM voucher_movements WHERE kind = 'expire'") == 1
    assert await quota.scalar("SELECT count(*) FROM timers WHERE kind = :k", k=EXPIRY_TIMER) == 0
    shown = (await quota.client.get(f"{API}/me/vouchers", headers=ent.headers)).json()["items"][0]
    assert (shown["state"], shown["expired_fen"]) == ("expired", 5_000_000)


async def _expired(q: Quota, voucher_id: str) -> bool:
    v = await q.row(Voucher, voucher_id)
    return v.expired_at is not None and v.remaining_fen == 0


async def test_reservations_outlive_the_window_and_what_they_free_later_expires(quota: Quota) -> None:
    ent = await quota.certified()
    today = shanghai_now().date()
    voucher = await quota.voucher(
        str(ent.org_id), 1_000_000, valid_from=date(today.year, 1, 1), valid_to=today
    )
    kept, dropped = (
        submitted(str(ent.org_id), price_fen=100_000, max_subsidy_fen=100_000),
        submitted(str(ent.org_id), price_fen=100_000, max_subsidy_fen=100_000),
    )
    for e in (kept, dropped):
        await quota.h.publish(e, aggregate_id=e.order_id, sequence=1)
    await quota.h.settle()
    assert (await quota.row(Voucher, voucher.id)).reserved_fen == 100_000

    # The window ends (the timer's moment, brought forward): only the unreserved part expires.
    async with quota.db.transaction() as s:
        assert await expire_voucher(s, voucher.id, now=domain.window_end(today)) == 900_000
    v = await quota.row(Voucher, voucher.id)
    assert (v.remaining_fen, v.reserved_fen, v.expired_fen) == (0, 100_000, 900_000)

    late = submitted(str(ent.org_id))
    await quota.h.publish(late, aggregate_id=late.order_id, sequence=1)
    await quota.h.publish(
        signed(kept.order_id, str(ent.org_id), 30_000), aggregate_id=kept.order_id, sequence=1
    )
    await quota.h.publish(
        OrderCancelled(order_id=dropped.order_id, reason="企业取消"),
        aggregate_id=dropped.order_id,
        sequence=2,
    )
    await quota.h.settle()

    rejected = await quota.published("quota.voucher_reservation_rejected")
    assert [d["payload"]["reason_code"] for d in rejected] == ["voucher_not_active"]
    released = await quota.published("quota.voucher_released")
    assert [(d["payload"]["amount_fen"], d["payload"]["expired_fen"]) for d in released] == [(50_000, 50_000)]
    assert (await quota.row(Reservation, kept.order_id)).committed_fen == 30_000
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.reserved_fen, v.used_fen, v.expired_fen) == (0, 0, 30_000, 970_000)
