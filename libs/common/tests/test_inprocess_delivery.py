"""In-process delivery: each consumer independently, concurrently, in its own transaction
(issue 5, item 9).

It used to run every consumer one after the other inside the relay's publish (212 events/s
with 3 consumers; one slow handler stalled the publisher for everyone). The promise stays:
a row is marked sent only once every consumer committed the effect or durably deferred it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.bus.consumer import REDELIVER_TIMER, Consumer
from common.bus.inprocess import InProcessTransport
from common.bus.outbox import OutboxRelay, emit
from common.db import Database
from common.events import Envelope
from common.testing.bus import CERTIFIED, Eventually, MakeDb, certified
from common.timers import TimerWorker


def slow_consumer(name: str, db: Database, delay: float) -> Consumer:
    consumer = Consumer(name, db)

    @consumer.on(CERTIFIED)
    async def certified_(session: AsyncSession, env: Envelope[Any]) -> None:
        await asyncio.sleep(delay)
        await session.execute(
            text("INSERT INTO applied (event_id, event_type, org_id, worker) VALUES (:e, :t, :o, :w)"),
            {"e": env.event_id, "t": env.event_type, "o": env.payload.org_id, "w": name},
        )

    return consumer


async def applied_by(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter(r[0] for r in await s.execute(text("SELECT worker FROM applied")))


async def test_consumers_are_delivered_to_concurrently_each_in_its_own_transaction(schema_db: MakeDb) -> None:
    db = await schema_db()
    transport = InProcessTransport()
    await transport.start()
    for name in ("quota", "catalog", "orders"):
        await transport.subscribe(slow_consumer(name, db, delay=0.4))
    async with db.transaction() as s:
        await emit(s, certified("c1"), aggregate_id="c1")
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await OutboxRelay(db, transport, listen=False).drain() == 1
    took = loop.time() - began
    assert took < 1.0, f"three 0.4 s handlers took {took:.2f} s: they ran one after the other"
    assert await applied_by(db) == Counter({"quota": 1, "catalog": 1, "orders": 1})


async def test_a_slow_handler_does_not_hold_the_publisher_and_is_applied_later_once(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    db = await schema_db()
    transport = InProcessTransport(retry_delays=[0.05, 0.1], handoff_timeout=0.3)
    await transport.start()
    fast, slow = slow_consumer("fast", db, delay=0), slow_consumer("slow", db, delay=1.0)
    await transport.subscribe(fast)
    await transport.subscribe(slow)
    timers = TimerWorker(db, {REDELIVER_TIMER: slow.redeliver}, poll_interval=0.05, name="slow")
    async with db.transaction() as s:
        env = await emit(s, certified("s1"), aggregate_id="s1")
    loop = asyncio.get_running_loop()
    began = loop.time()
    relay = OutboxRelay(db, transport, listen=False)
    assert await relay.drain() == 1  # marked sent: fast applied, slow durably handed over
    assert loop.time() - began < 0.9, "the slow handler held the publisher"
    assert await applied_by(db) == Counter({"fast": 1})
    async with db.session() as s:
        (timer,) = (
            await s.execute(
                text("SELECT key, attempts, state FROM timers WHERE kind = :k"), {"k": REDELIVER_TIMER}
            )
        ).all()
    assert tuple(timer) == (f"slow:{env.event_id}", 0, "scheduled")  # no retry spent

    timers.start()
    try:
        await eventually(lambda: _applied(db, "slow"), within=10, what="the slow one applied later")
        await eventually(lambda: _no_timers(db), what="its redelivery done")
    finally:
        await timers.stop()
    assert await applied_by(db) == Counter({"fast": 1, "slow": 1})


async def _applied(db: Database, worker: str) -> bool:
    return (await applied_by(db))[worker] == 1


async def _no_timers(db: Database) -> bool:
    async with db.session() as s:
        return (await s.execute(text("SELECT count(*) FROM timers"))).scalar_one() == 0
