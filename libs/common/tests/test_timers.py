"""Durable timers: they survive a restart, run once however many workers there are, retry
with backoff, park dead with their error, and come back with ``revive``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import Database
from common.tables import TimerRow
from common.testing.bus import Eventually, MakeDb
from common.timers import Poison, TimerWorker, cancel, dead_timers, revive, schedule, utcnow


def recorder(worker: str, *, delay: float = 0.0) -> Callable[[AsyncSession, TimerRow], Awaitable[None]]:
    """A timer handler whose effect is a row in ``applied`` (in the timer's transaction)."""

    async def run(session: AsyncSession, timer: TimerRow) -> None:
        if delay:
            await asyncio.sleep(delay)
        await session.execute(
            text("INSERT INTO applied (event_id, event_type, org_id, worker) VALUES (:k, :t, :o, :w)"),
            {"k": timer.key, "t": timer.kind, "o": str(timer.payload.get("order", "")), "w": worker},
        )

    return run


async def timers(db: Database) -> list[dict[str, Any]]:
    async with db.session() as s:
        return [dict(r._mapping) for r in await s.execute(text("SELECT * FROM timers ORDER BY id"))]


async def effects(db: Database) -> list[tuple[str, str]]:
    async with db.session() as s:
        return [
            (r[0], r[1]) for r in await s.execute(text("SELECT event_id, worker FROM applied ORDER BY id"))
        ]


async def add(db: Database, key: str, due_in: float, kind: str = "orders.expire") -> None:
    async with db.transaction() as s:
        await schedule(s, kind, key, utcnow() + timedelta(seconds=due_in), {"order": key})


async def test_a_timer_still_fires_after_its_worker_restarted(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    db = await schema_db()
    first = TimerWorker(db, {"orders.expire": recorder("first")}, poll_interval=0.02)
    first.start()
    await add(db, "order-1", due_in=0.25)
    await first.stop()  # the process stops before the timer is due

    (row,) = await timers(db)
    assert (row["key"], row["state"], row["attempts"]) == ("order-1", "scheduled", 0)
    assert await effects(db) == []

    restarted_db = Database(db.url, pool_size=2)  # a new process: its own pool
    second = TimerWorker(restarted_db, {"orders.expire": recorder("second")}, poll_interval=0.02)
    second.start()
    try:
        await eventually(lambda: effects(db), what="the timer fired")
        await eventually(lambda: _none_left(db))
        assert await effects(db) == [("order-1", "second")]
    finally:
        await second.stop()
        await restarted_db.dispose()


async def _none_left(db: Database) -> bool:
    return await timers(db) == []


async def test_two_workers_never_run_one_timer_twice(schema_db: MakeDb, eventually: Eventually) -> None:
    db = await schema_db()
    n = 40
    async with db.transaction() as s:
        for i in range(n):
            await schedule(s, "orders.expire", f"order-{i}", utcnow() - timedelta(seconds=1), {"order": i})
    other_db = Database(db.url, pool_size=2)
    workers = [
        TimerWorker(d, {"orders.expire": recorder(name, delay=0.002)}, poll_interval=0.02, name=name)
        for d, name in ((db, "a"), (other_db, "b"))
    ]
    for w in workers:
        w.start()
    try:
        await eventually(lambda: _none_left(db), what="every timer done")
    finally:
        for w in workers:
            await w.stop()
        await other_db.dispose()

    done = await effects(db)
    assert Counter(key for key, _ in done) == Counter({f"order-{i}": 1 for i in range(n)})
    by_worker = Counter(worker for _, worker in done)
    assert set(by_worker) == {"a", "b"}, f"both workers took part: {by_worker}"


async def test_a_failing_timer_retries_with_backoff_is_parked_with_its_error_and_revives(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    db = await schema_db()
    loop = asyncio.get_running_loop()
    calls: list[float] = []
    broken = True
    record = recorder("w")

    async def send_reminder(session: AsyncSession, timer: TimerRow) -> None:
        calls.append(loop.time())
        await record(session, timer)  # an effect that must not survive the failure
        if broken:
            raise ConnectionError("smtp down")

    worker = TimerWorker(db, {"orders.remind": send_reminder}, retry_delays=[0.1, 0.2], poll_interval=0.02)
    await add(db, "order-7", due_in=0, kind="orders.remind")
    worker.start()
    try:
        await eventually(lambda: _state(db, "dead"), what="parked after the last retry")
        (row,) = await timers(db)
        assert (row["state"], row["attempts"], row["last_error"]) == ("dead", 3, "ConnectionError: smtp down")
        assert len(calls) == 3  # the first try and two retries
        gaps = [b - a for a, b in pairwise(calls)]
        assert gaps[0] >= 0.09 and gaps[1] >= 0.19, f"backoff 0.1 s then 0.2 s, saw {gaps}"
        assert await effects(db) == []  # every failed run was rolled back

        async with db.session() as s:
            assert [t.key for t in await dead_timers(s)] == ["order-7"]
        broken = False
        async with db.transaction() as s:
            assert await revive(s) == 1
        await eventually(lambda: _none_left(db), what="the revived timer ran")
        assert len(calls) == 4
        assert await effects(db) == [("order-7", "w")]  # applied once
    finally:
        await worker.stop()


async def _state(db: Database, state: str) -> bool:
    return [t["state"] for t in await timers(db)] == [state]


async def test_a_timer_that_can_never_run_is_parked_at_once(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    db = await schema_db()

    async def refuse(*_: Any) -> None:
        raise Poison("order order-9 no longer exists")

    worker = TimerWorker(db, {"orders.remind": refuse}, retry_delays=[0.05, 0.1], poll_interval=0.02)
    await add(db, "order-9", due_in=0, kind="orders.remind")
    worker.start()
    try:
        await eventually(lambda: _all_dead(db, 1), what="parked")
    finally:
        await worker.stop()
    assert {(t["key"], t["attempts"], t["last_error"]) for t in await timers(db)} == {
        ("order-9", 1, "Poison: order order-9 no longer exists"),
    }


async def test_a_timer_of_a_kind_this_replica_has_no_handler_for_waits_for_one_that_has(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    """During a rolling upgrade an old replica meets a new kind of timer: it leaves it alone
    (it used to park it dead at once) and a replica that knows the kind runs it."""
    db = await schema_db()
    old = TimerWorker(db, {"orders.remind": recorder("old")}, poll_interval=0.02, name="old")
    await add(db, "order-8", due_in=0, kind="orders.new_kind")
    await add(db, "order-7", due_in=0, kind="orders.remind")
    old.start()
    try:
        await eventually(lambda: effects(db), what="the old replica ran the kind it knows")
        await asyncio.sleep(0.2)  # ten polls of the old replica
        (waiting,) = await timers(db)
        assert (waiting["key"], waiting["state"], waiting["attempts"], waiting["last_error"]) == (
            "order-8",
            "scheduled",
            0,
            None,
        )
        other_db = Database(db.url, pool_size=2)
        new = TimerWorker(other_db, {"orders.new_kind": recorder("new")}, poll_interval=0.02, name="new")
        new.start()
        try:
            await eventually(lambda: _none_left(db), what="the new replica ran it")
        finally:
            await new.stop()
            await other_db.dispose()
    finally:
        await old.stop()
    assert await effects(db) == [("order-7", "old"), ("order-8", "new")]


async def _all_dead(db: Database, n: int) -> bool:
    rows = await timers(db)
    return len(rows) == n and all(t["state"] == "dead" for t in rows)


async def test_scheduling_again_moves_the_timer_and_cancel_removes_it(schema_db: MakeDb) -> None:
    db = await schema_db()
    await add(db, "order-3", due_in=60)
    await add(db, "order-3", due_in=3600)  # the deadline moved: still one timer
    (row,) = await timers(db)
    assert row["due_at"] > utcnow() + timedelta(seconds=3000)
    async with db.transaction() as s:
        assert await cancel(s, "orders.expire", "order-3") is True
    assert await timers(db) == []
    async with db.transaction() as s:
        assert await cancel(s, "orders.expire", "order-3") is False  # nothing left to remove


async def test_cancel_never_waits_behind_a_running_timer_and_says_it_removed_nothing(
    schema_db: MakeDb, eventually: Eventually
) -> None:
    """An order's time-out is running when the provider accepts it: ``cancel`` used to wait
    for the timer's row lock, delete nothing, say nothing, and both effects committed. Now
    it answers at once that it did not remove the timer, so the caller knows the time-out is
    firing and decides under the order's lock."""
    db = await schema_db()
    loop = asyncio.get_running_loop()
    running, release = asyncio.Event(), asyncio.Event()
    record = recorder("w")

    async def expire(session: AsyncSession, timer: TimerRow) -> None:
        running.set()
        await release.wait()
        await record(session, timer)

    worker = TimerWorker(db, {"orders.expire": expire}, poll_interval=0.02)
    await add(db, "order-5", due_in=0)
    worker.start()
    try:
        await asyncio.wait_for(running.wait(), 5)
        began = loop.time()
        async with db.transaction() as s:
            removed = await asyncio.wait_for(cancel(s, "orders.expire", "order-5"), 2)
        assert removed is False
        assert loop.time() - began < 1, "cancel did not wait for the running timer"
        release.set()
        await eventually(lambda: _none_left(db), what="the running timer finished")
    finally:
        release.set()
        await worker.stop()
    assert await effects(db) == [("order-5", "w")]

    await add(db, "order-6", due_in=60)  # not running: removed, and it says so
    async with db.transaction() as s:
        assert await cancel(s, "orders.expire", "order-6") is True
    assert await timers(db) == []
