"""The harness's lag switch on the real quota and orders, over both transports: a held relay
publishes nothing and a held consumer applies nothing (more deliveries than RabbitMQ's
prefetch), ``settle()`` settles the rest instead of waiting for what is held, and after the
release every order arrives, each event applied once: nothing was lost."""

from __future__ import annotations

from typing import Any

import pytest

from .journey import BRANCH, Cell, World, submit

ORDERS = 20  # more than a RabbitMQ consumer's prefetch (16): some wait in the broker's queue


async def counts(w: World, orders: list[str]) -> dict[str, Any]:
    statuses = await w.rows("orders", "SELECT status FROM orders WHERE id = ANY(:o)", o=orders)
    unsent = await w.rows(
        "orders",
        "SELECT count(*) AS n FROM outbox WHERE aggregate_id = ANY(:o) AND sent_at IS NULL",
        o=orders,
    )
    reserved = await w.rows(
        "quota", "SELECT count(*) AS n FROM voucher_reservations WHERE order_id = ANY(:o)", o=orders
    )
    quota_unsent = await w.rows(
        "quota", "SELECT count(*) AS n FROM outbox WHERE aggregate_id = ANY(:o) AND sent_at IS NULL", o=orders
    )
    applied = await w.rows(
        "orders", "SELECT count(*) AS n FROM inbox WHERE event_type = 'quota.voucher_reserved'"
    )
    return {
        "statuses": sorted({r["status"] for r in statuses}),
        "orders_unpublished": unsent[0]["n"],
        "reservations": reserved[0]["n"],
        "quota_unpublished": quota_unsent[0]["n"],
        "reserved_applied_by_orders": applied[0]["n"],
    }


# What each held part leaves after the submissions, once the rest has settled.
WHILE_HELD = {
    ("orders", "relay"): {"orders_unpublished": ORDERS, "reservations": 0, "quota_unpublished": 0},
    ("quota", "consumer"): {"orders_unpublished": 0, "reservations": 0, "quota_unpublished": 0},
    ("quota", "relay"): {"orders_unpublished": 0, "reservations": ORDERS, "quota_unpublished": ORDERS},
    ("orders", "consumer"): {"orders_unpublished": 0, "reservations": ORDERS, "quota_unpublished": 0},
}


@pytest.mark.timeout(300)
async def test_a_held_relay_or_consumer_does_nothing_until_released_and_loses_nothing(world: World) -> None:
    w = world
    applied = 0
    for (service, part), expected in WHILE_HELD.items():
        c: Cell = await w.cell(BRANCH["cancel_before_acceptance"])
        await w.h.settle()
        w.h.hold(service, part)  # type: ignore[arg-type]
        assert w.h.holding(service, part)  # type: ignore[arg-type]
        orders = []
        for _ in range(ORDERS):
            await submit(c)
            assert c.order_id is not None
            orders.append(c.order_id)
        await w.h.settle(within=30)  # returns although the held part has work waiting
        held = await counts(w, orders)
        assert held == {
            **expected,
            "statuses": ["pending_voucher"],
            "reserved_applied_by_orders": applied,
        }, f"{service} {part} held"

        w.h.release(service, part)  # type: ignore[arg-type]
        assert not w.h.held
        await w.h.settle(within=30)
        applied += ORDERS
        assert await counts(w, orders) == {
            "statuses": ["awaiting_acceptance"],
            "orders_unpublished": 0,
            "reservations": ORDERS,
            "quota_unpublished": 0,
            "reserved_applied_by_orders": applied,  # each reservation applied once
        }, f"after {service}'s {part} was released"


async def test_holding_an_unknown_part_is_refused(saga) -> None:
    h = await saga("quota")
    with pytest.raises(ValueError, match="relay"):
        h.hold("quota", "timers")
