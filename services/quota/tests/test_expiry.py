"""Vouchers across time: once its window and the grace after it (a setting, one day by
default) have ended, a voucher's unreserved remainder expires (a durable timer, safe to run
twice, in the journal); orders submitted inside the window that reach quota during the grace
still reserve; reservations made stay valid until their orders resolve; what a later release
frees expires too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from common.events import OrderCancelled
from common.numbers import shanghai_now
from common.timers import utcnow
from invariants.checks import check_all
from invariants.readers import read_all
from quota.domain.campaigns import window_end
from quota.domain.vouchers import expiry_moment
from quota.models import Reservation, Voucher
from quota.service.vouchers import EXPIRY_TIMER, GRACE_TIMER, expire_voucher
from quota.testing import API, Quota, journal_adds_up, signed, submitted

pytestmark = pytest.mark.parametrize(
    "transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"]
)


async def invariants_broken(quota: Quota) -> list[str]:
    """What ``voucher-invariants`` finds wrong in quota's database (its own checks). The
    auditor reads quota, so it is called from quota's tests, never from the quota package."""
    snapshot, results = await read_all({"quota": quota.h["quota"].runtime.settings.db_url})
    assert [r.ok for r in results if r.service == "quota"] == [True], results
    report = check_all(snapshot)
    assert "voucher balances" in report.ran
    return [str(v) for v in report.violations]


async def test_a_window_that_has_closed_expires_the_remainder_by_its_timer_once(quota: Quota) -> None:
    ent = await quota.certified()
    # Its last day two days ago: the window closed yesterday at 0:00, the day's grace is over.
    last_day = shanghai_now().date() - timedelta(days=2)
    voucher = await quota.voucher(str(ent.org_id), 5_000_000, valid_from=last_day, valid_to=last_day)
    await quota.h.eventually(lambda: _expired(quota, voucher.id), within=10)
    async with quota.db.transaction() as s:
        again = await expire_voucher(s, voucher.id, grace=timedelta(days=1))
        assert again.expired_fen == 0  # a second run finds nothing left
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.expired_fen) == (0, 5_000_000)
    assert await quota.scalar("SELECT count(*) FROM voucher_movements WHERE kind = 'expire'") == 1
    assert await _timers_left(quota, None, 0)
    shown = (await quota.client.get(f"{API}/me/vouchers", headers=ent.headers)).json()["items"][0]
    assert (shown["state"], shown["expired_fen"]) == ("expired", 5_000_000)


async def test_a_window_that_closed_last_midnight_keeps_its_remainder_for_a_days_grace(quota: Quota) -> None:
    ent = await quota.certified()
    yesterday = shanghai_now().date() - timedelta(days=1)
    voucher = await quota.voucher(str(ent.org_id), 5_000_000, valid_from=yesterday, valid_to=yesterday)
    grace_end = window_end(yesterday) + timedelta(days=1)  # the default grace: a day
    await quota.h.eventually(
        lambda: _timer_due(quota, GRACE_TIMER, grace_end), within=10, what="the grace timer set"
    )
    # A grace timer that comes early (set under a shorter grace, say) expires nothing and is
    # set again for the end of the grace in force.
    async with quota.db.transaction() as s:
        await s.execute(text("UPDATE timers SET due_at = now() WHERE kind = :k"), {"k": GRACE_TIMER})
    await quota.h.eventually(
        lambda: _timer_due(quota, EXPIRY_TIMER, grace_end), within=10, what="the expiry timer set again"
    )
    await quota.h.settle()
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.expired_fen, v.expired_at) == (5_000_000, 0, None)
    assert await quota.scalar("SELECT count(*) FROM timers WHERE kind LIKE 'voucher_expiry%'") == 1


async def _timer_due(q: Quota, kind: str, due: datetime) -> bool:
    found = await q.scalar("SELECT max(due_at) FROM timers WHERE kind = :k AND state = 'scheduled'", k=kind)
    return found == due


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

    # The window and its grace end (the timer's moment, brought forward, without a grace):
    # only the unreserved part expires.
    async with quota.db.transaction() as s:
        expiry = await expire_voucher(s, voucher.id, grace=timedelta(0), now=window_end(today))
        assert expiry.expired_fen == 900_000
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


async def test_an_order_submitted_inside_the_window_and_applied_after_it_closed_reserves_until_the_grace_ends(
    make_quota: Callable[..., Awaitable[Quota]],
) -> None:
    closed = shanghai_now().date() - timedelta(days=1)  # the window's last day was yesterday
    end = window_end(closed)  # it closed at midnight, Shanghai time
    # The grace (a day by default) ends 20 s from now here, so the test sees it end (the
    # steps before it must be done by then, even on a busy machine).
    grace = (utcnow() - end).total_seconds() + 20
    quota = await make_quota(voucher_expiry_grace_seconds=grace)
    ent = await quota.certified()
    voucher = await quota.voucher(
        str(ent.org_id), 5_000_000, valid_from=closed - timedelta(days=30), valid_to=closed
    )
    # The expiry timer (due at the window's end, already past) runs first...
    await quota.h.eventually(
        lambda: _timers_left(quota, EXPIRY_TIMER, 0), within=10, what="the window-end timer ran"
    )
    # ...then the order submitted at 23:00 on the window's last day reaches quota: honoured.
    inside = end - timedelta(hours=1)
    held = submitted(str(ent.org_id), price_fen=100_000, max_subsidy_fen=100_000)
    await quota.h.publish(held, aggregate_id=held.order_id, sequence=1, occurred_at=inside)
    # An order submitted after the window is refused, as before.
    after = submitted(str(ent.org_id))
    await quota.h.publish(after, aggregate_id=after.order_id, sequence=1)
    await quota.h.settle()

    reserved = await quota.published("quota.voucher_reserved")
    assert [(d["aggregate_id"], d["payload"]["amount_fen"]) for d in reserved] == [(held.order_id, 50_000)]
    rejected = await quota.published("quota.voucher_reservation_rejected")
    assert [(d["aggregate_id"], d["payload"]["reason_code"]) for d in rejected] == [
        (after.order_id, "outside_window")
    ]
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.reserved_fen, v.expired_fen) == (4_950_000, 50_000, 0)
    assert await invariants_broken(quota) == []
    due = await quota.scalar("SELECT due_at FROM timers WHERE kind = :k", k=GRACE_TIMER)
    assert due == expiry_moment(closed, timedelta(seconds=grace))

    # The grace ends: what is left expires; the reservation stays valid until its order resolves.
    await quota.h.eventually(lambda: _expired(quota, voucher.id), within=60, what="the remainder expired")
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.reserved_fen, v.expired_fen) == (0, 50_000, 4_950_000)
    assert await invariants_broken(quota) == []

    # An in-window submission that reaches quota only after the grace finds nothing left.
    late = submitted(str(ent.org_id))
    await quota.h.publish(late, aggregate_id=late.order_id, sequence=1, occurred_at=inside)
    await quota.h.publish(
        signed(held.order_id, str(ent.org_id), 40_000, 100_000), aggregate_id=held.order_id, sequence=1
    )
    await quota.h.settle()
    rejected = await quota.published("quota.voucher_reservation_rejected")
    assert [d["payload"]["reason_code"] for d in rejected if d["aggregate_id"] == late.order_id] == [
        "voucher_not_active"
    ]
    v = await journal_adds_up(quota, voucher.id)
    # The signing commits 400元 and what it frees (100元) expires at once.
    assert (v.remaining_fen, v.reserved_fen, v.used_fen, v.expired_fen) == (0, 0, 40_000, 4_960_000)
    assert await invariants_broken(quota) == []
    assert await _timers_left(quota, None, 0)


async def _timers_left(q: Quota, kind: str | None, count: int) -> bool:
    sql = "SELECT count(*) FROM timers WHERE kind LIKE 'voucher_expiry%'"
    if kind is not None:
        sql = "SELECT count(*) FROM timers WHERE kind = :k"
        return await q.scalar(sql, k=kind) == count
    return await q.scalar(sql) == count
