"""The consumer's side: an idempotent inbox, events that arrive early, stale or broken.

Run on RabbitMQ and in-process alike (``transport_kind``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from common.testing.bus import BANK_CHANGED, CERTIFIED, Bus, MakeBus, bank_changed, body_of, certified


async def _settled(bus: Bus, ids: set[str]) -> bool:
    """Every one of ``ids`` is acknowledged (in the inbox)."""
    return ids <= set(await bus.inbox())


# --- 7. duplicates and stale events change nothing ----------------------------------------------


async def test_the_same_event_delivered_twice_or_a_stale_one_changes_nothing(bus: Bus) -> None:
    created, older, newer = await bus.emit(
        (certified("s1"), "s1"),
        (bank_changed("s1", "6222 0001"), "s1"),
        (bank_changed("s1", "6222 0002"), "s1"),
    )
    assert (older.sequence, newer.sequence) == (2, 3)
    await bus.deliver_raw(body_of(created))
    await bus.eventually(lambda: bus.all_applied([created]))

    # A duplicate: the broker delivers it again. The handler does not even run.
    await bus.deliver_raw(body_of(created))
    await bus.eventually(lambda: bus.consumer.deliveries[created.event_id] == 2, what="second delivery")
    assert bus.consumer.calls[created.event_id] == 1

    # Stale: the newer bank change overtakes the older one, which is then acknowledged (not
    # retried, not parked) and changes nothing.
    await bus.deliver_raw(body_of(newer))
    await bus.eventually(lambda: bus.all_applied([newer]))
    await bus.deliver_raw(body_of(older))
    await bus.eventually(lambda: _settled(bus, {older.event_id}), what="stale event acknowledged")
    assert bus.consumer.calls[older.event_id] == 1

    assert await bus.org("s1") == {
        "org_id": "s1",
        "name": "广西s1制造有限公司",
        "bank": "6222 0002",
        "bank_seq": 3,
    }
    assert await bus.applied() == Counter({created.event_id: 1, newer.event_id: 1})
    assert await bus.inbox() == Counter({created.event_id: 1, newer.event_id: 1, older.event_id: 1})
    assert not await bus.dead_letters()


# --- 7. what can never be applied is parked at once ----------------------------------------------


async def test_an_event_that_can_never_be_applied_is_parked_at_once(bus: Bus) -> None:
    """A malformed envelope can never be applied: parked at once. (A version this build does
    not know is not poison: see test_unhandled.py, retried then parked with the reason.)"""
    malformed, good = await bus.emit((certified("p2"), "p2"), (certified("p3"), "p3"))
    await bus.deliver_raw({**body_of(malformed), "aggregate_id": None})
    await bus.deliver_raw(body_of(good))  # and the consumer goes on with the next one

    await bus.eventually(lambda: _count(bus.dead_letters(), 1), what="parked")
    await bus.eventually(lambda: bus.all_applied([good]))
    dead = {d.event_id: d for d in await bus.dead_letters()}
    assert {i: (d.error, d.error_type, d.attempts) for i, d in dead.items()} == {
        malformed.event_id: ("Poison: malformed envelope: 1 error(s)", "Poison", 1),
    }
    for bad in (malformed,):
        assert bus.consumer.deliveries[bad.event_id] == 1  # delivered once, never retried
        assert bus.consumer.calls[bad.event_id] == 0  # the handler never saw it
        if bus.rabbit is not None:
            headers = dead[bad.event_id].headers or {}
            assert headers["x-retry-count"] == 0
            assert headers["x-consumer"] == "ledger"
            assert headers["x-original-routing-key"] == CERTIFIED
        else:
            assert dead[bad.event_id].timer_kind == "bus.redeliver"
    assert await bus.inbox() == Counter({good.event_id: 1})


async def _count(dead_letters: Any, n: int) -> bool:
    return len(await dead_letters) == n


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_unreadable_bytes_are_parked_at_once(bus: Bus) -> None:
    await bus.publish_bytes(b"\xff\xfe not json", routing_key=CERTIFIED)
    (dead,) = await bus.eventually(lambda: bus.dead_letters(), what="parked")
    assert dead.event_id == "garbage-1"
    assert dead.error_type == "Poison"
    assert dead.error.startswith("Poison: unreadable message:")
    assert dead.attempts == 1
    assert bus.consumer.deliveries == Counter()  # it never reached the inbox
    assert await bus.inbox() == Counter()


# --- 3. an event that arrives before its aggregate is ready -------------------------------------


async def test_an_event_that_arrives_before_its_aggregate_is_retried_and_applied_once_ready(
    make_bus: MakeBus,
) -> None:
    # Retry delays long enough for the aggregate to be written during the first one.
    bus = await make_bus(retry_delays=[0.15, 0.3, 0.6, 1.2])
    (early,) = await bus.emit((bank_changed("e1", "6222 0003"), "e1"))
    assert await bus.relay().drain() == 1
    await bus.eventually(lambda: bus.consumer.calls[early.event_id] >= 1, what="first (early) attempt")
    assert not await bus.applied()

    (ready,) = await bus.emit((certified("e1"), "e1"))
    assert await bus.relay().drain() == 1
    await bus.eventually(lambda: bus.all_applied([ready, early]), what="applied once ready")

    assert bus.consumer.calls[early.event_id] >= 2  # retried...
    assert await bus.applied() == Counter({ready.event_id: 1, early.event_id: 1})  # ...applied once
    assert (await bus.org("e1") or {})["bank"] == "6222 0003"
    assert await bus.inbox() == Counter({ready.event_id: 1, early.event_id: 1})
    assert not await bus.dead_letters()
    if bus.rabbit is None:
        assert await bus.timer_rows() == []  # the redelivery timer is gone with its success
    else:
        for i in range(len(bus.retry_delays)):
            assert await bus.queue_depth(f"{bus.queue}.retry.{i}") == 0


async def test_an_event_whose_aggregate_never_comes_is_parked_with_the_reason(bus: Bus) -> None:
    (orphan,) = await bus.emit((bank_changed("nobody", "6222 0004"), "nobody"))
    assert await bus.relay().drain() == 1
    (dead,) = await bus.eventually(lambda: bus.dead_letters(), what="parked after the last retry")

    tries = len(bus.retry_delays) + 1
    assert (dead.event_id, dead.error_type, dead.attempts) == (orphan.event_id, "RetryLater", tries)
    assert dead.error == "RetryLater: organization nobody is not certified yet"
    assert bus.consumer.calls[orphan.event_id] == tries
    assert await bus.inbox() == Counter()
    if dead.headers is not None:
        assert dead.headers["x-original-routing-key"] == BANK_CHANGED
