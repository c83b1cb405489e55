"""Every event orders handles, delivered twice, out of order and once crashed half-way,
on both transports: the order ends exactly where the same saga delivered in order ends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

YUAN = 100  # fen per yuan
TOTAL, SUBSIDY, DEPOSIT = 300_000 * YUAN, 90_000 * YUAN, 50_000 * YUAN
PAYABLE = TOTAL - SUBSIDY


def end_state(seen: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "status",
        "subsidy_fen",
        "voucher_state",
        "contract_total_fen",
        "contract_payable_fen",
        "paid_fen",
        "outstanding_fen",
        "deposit_met",
        "fully_paid",
        "committed_fen",
        "settled_fen",
    )
    state = {k: seen[k] for k in keys}
    state["timeline"] = Counter(s["label"] for s in seen["timeline"])
    state["evaluation"] = seen["evaluation"]["rating"]
    return state


async def test_events_delivered_twice_out_of_order_and_after_a_crash_end_where_the_ordered_saga_ends(
    world,
) -> None:
    w = await world()
    e, p = w.enterprise, w.provider

    # --- A: every event once, in order ---------------------------------------------------------
    a = await w.submit()
    await w.reserved(a)
    await w.settle()
    await w.post(a, "accept", p)
    await w.signed(a, TOTAL, SUBSIDY, DEPOSIT)
    await w.emit(w.deducted_event(a, SUBSIDY), a["id"])
    await w.emit(w.payment_event(a, 20_000 * YUAN, 20_000 * YUAN, PAYABLE, DEPOSIT), a["id"])
    await w.emit(w.payment_event(a, 30_000 * YUAN, DEPOSIT, PAYABLE, DEPOSIT), a["id"])
    await w.settle()
    await w.post(a, "start-service", p)
    await w.post(a, "complete-service", p)
    await w.emit(w.payment_event(a, PAYABLE - DEPOSIT, PAYABLE, PAYABLE, DEPOSIT), a["id"])
    await w.settle()
    await w.post(a, "evaluation", e, json={"rating": 4, "content": "满意"}, expect=201)
    await w.emit(w.settlement_event(a, SUBSIDY), a["id"])
    await w.settle()
    expected = end_state(await w.get(a))
    assert expected["status"] == "evaluated" and expected["voucher_state"] == "settled"

    # --- B: duplicates, early events, a crashed handler ------------------------------------------
    b = await w.submit()
    w.h.crash("orders", "quota.voucher_reserved", after_statements=3)
    await w.reserved(b, twice=True)
    await w.settle()
    assert (await w.get(b))["status"] == "awaiting_acceptance"
    await w.post(b, "accept", p)
    # payments and quota heard of the signing before orders did; the second installment first
    p1 = w.payment_event(b, 20_000 * YUAN, 20_000 * YUAN, PAYABLE, DEPOSIT)
    p2 = w.payment_event(b, 30_000 * YUAN, DEPOSIT, PAYABLE, DEPOSIT)
    w.h.crash("orders", "contracts.contract_signed", after_statements=4)
    await w.emit(p2, b["id"], sequence=2, twice=True)
    await w.emit(w.deducted_event(b, SUBSIDY), b["id"], sequence=2)
    await w.emit(p1, b["id"], sequence=1)
    await w.signed(b, TOTAL, SUBSIDY, DEPOSIT, twice=True)
    await w.settle()
    seen = await w.get(b)
    assert seen["status"] == "awaiting_service" and seen["paid_fen"] == DEPOSIT
    await w.post(b, "start-service", p)
    await w.post(b, "complete-service", p)
    # evaluated before the balance came; the settlement announced before the balance
    await w.post(b, "evaluation", e, json={"rating": 4, "content": "满意"}, expect=201)
    settlement = await w.emit(w.settlement_event(b, SUBSIDY), b["id"], sequence=4)
    balance = await w.emit(
        w.payment_event(b, PAYABLE - DEPOSIT, PAYABLE, PAYABLE, DEPOSIT), b["id"], sequence=3
    )
    await w.h.redeliver(settlement)
    await w.h.redeliver(balance)
    await w.settle()

    assert end_state(await w.get(b)) == expected
    types = await w.published_types(b["id"])
    assert types.count("orders.order_completed") == 1 and types.count("orders.order_accepted") == 1
    async with w.h.db("orders").session() as s:
        dead = (await s.execute(text("SELECT count(*) FROM timers WHERE state = 'dead'"))).scalar_one()
    assert dead == 0  # nothing was parked: every early event was applied on a retry


async def test_a_termination_and_its_reversal_that_outrun_the_signing_and_the_deduction_wait_for_them(
    world,
) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    await w.post(order, "accept", w.provider)
    # the administrator's termination and quota's reversal reach orders before the signing and
    # the deduction they follow (which happened first, in their services); each delivered twice
    signed_at = datetime.now(UTC)
    at = {n: signed_at + timedelta(milliseconds=n) for n in range(4)}
    await w.terminated(order, sequence=2, twice=True, occurred_at=at[2])
    await w.emit(w.reversed_event(order, SUBSIDY), order["id"], sequence=3, twice=True, occurred_at=at[3])
    await w.emit(w.deducted_event(order, SUBSIDY), order["id"], sequence=2, occurred_at=at[1])
    await w.signed(order, TOTAL, SUBSIDY, DEPOSIT, sequence=1, twice=True, occurred_at=at[0])
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "terminated" and seen["tab"] == "cancelled"
    assert seen["voucher_state"] == "reversed" and seen["contract_total_fen"] == TOTAL
    labels = [s["label"] for s in seen["timeline"]]
    assert labels.count("合同终止，订单取消") == 1 and labels.count("服务券抵扣撤销") == 1
    assert labels.index("签订合同") < labels.index("合同终止，订单取消")
    # a payment announced after the termination is recorded and changes nothing
    await w.paid(order, DEPOSIT, DEPOSIT, PAYABLE, DEPOSIT)
    await w.settle()
    assert (await w.get(order))["status"] == "terminated"


async def test_a_step_reads_when_it_happened_where_it_happened_whenever_orders_hears_of_it(world) -> None:
    """The timeline is "who did what, when": a fact another service announces is stamped with
    the moment it happened there (the event's occurred_at), not when orders applied it, and
    the steps read in that order: payments confirmed the deposit after the signing and quota
    deducted the voucher in between, though orders heard of the payment first and of the
    signing last (as after an outage of its consumer)."""
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    await w.post(order, "accept", w.provider)
    signed_at = datetime.now(UTC) + timedelta(seconds=1)
    deducted_at, paid_at = signed_at + timedelta(seconds=1), signed_at + timedelta(minutes=5)
    await w.paid(order, DEPOSIT, DEPOSIT, PAYABLE, DEPOSIT, occurred_at=paid_at)
    await w.emit(w.deducted_event(order, SUBSIDY), order["id"], occurred_at=deducted_at)
    await w.signed(order, TOTAL, SUBSIDY, DEPOSIT, occurred_at=signed_at)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_service"
    steps = [(s["label"], datetime.fromisoformat(s["at"])) for s in seen["timeline"]]
    labels = [label for label, _ in steps]
    assert labels.index("服务机构接单") < labels.index("签订合同") < labels.index("服务券抵扣")
    assert labels.index("服务券抵扣") < labels.index("支付成功")
    moments = dict(steps)
    assert moments["签订合同"] == signed_at and moments["服务券抵扣"] == deducted_at
    assert moments["支付成功"] == paid_at
    assert [at for _, at in steps] == sorted(at for _, at in steps)
