"""A database outage does not burn the retry budget (issue 5, item 5).

Every exception used to count as a handler failure, so PostgreSQL away for longer than the
retry delays parked every event in the DLQ. Transient infrastructure errors (connection
refused or reset, pool time-outs, serialization failures, deadlocks) now pause the
consumer until the database answers, and never count toward the DLQ. The outage is made
with a TCP proxy in front of PostgreSQL (the shared server is never stopped)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from common.bus.transient import is_conflict, is_transient
from common.db import Database
from common.events import Envelope
from common.testing.bus import MakeBus, MakeDb, certified
from common.testing.proxy import TcpProxy


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(
        parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}")
    )


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_a_database_outage_pauses_the_consumer_and_spends_none_of_the_events_retries(
    make_bus: MakeBus, postgres_server: str
) -> None:
    parts = urlsplit(postgres_server)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        bus = await make_bus(consumer_url_hook=lambda u: via(u, proxy.port))  # retries 0.05/0.1/0.2 s
        proxy.cut()  # the consumer's database goes away
        events = await bus.emit(*((certified(f"t{i}"), f"t{i}") for i in range(5)))
        assert await bus.relay().drain() == 5  # the publisher's database is fine

        await bus.eventually(lambda: bus.consumer.paused, what="the consumer paused")
        await asyncio.sleep(1.5)  # four times the whole retry budget (0.35 s)
        assert not await bus.dead_letters(), "an outage parked events"
        for i in range(len(bus.retry_delays)):
            assert await bus.queue_depth(f"{bus.queue}.retry.{i}") == 0, "an outage spent a retry"
        assert await bus.applied() == Counter()

        proxy.restore()
        await bus.eventually(lambda: bus.all_applied(events), within=30, what="all applied once it is back")
        ids = [e.event_id for e in events]
        assert await bus.applied() == Counter(dict.fromkeys(ids, 1))
        assert await bus.inbox() == Counter(dict.fromkeys(ids, 1))
        assert not await bus.dead_letters()
        assert not bus.consumer.paused


async def test_a_database_with_no_room_for_another_connection_spends_none_of_the_events_retries(
    make_bus: MakeBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server says "sorry, too many clients already" for longer than the whole retry
    budget, while a ping finds a free connection: the events wait (no retry spent, nothing
    parked) and are applied once there is room. The consumer backs off meanwhile instead of
    hammering a database that has no room (a handful of tries in a second, not hundreds)."""
    bus = await make_bus()  # retries 0.05/0.1/0.2 s
    loop = asyncio.get_running_loop()
    saturated_until: list[float] = []
    tries_while_saturated: Counter[str] = Counter()
    enter = bus.consumer._enter

    def no_room(env: Envelope[Any]) -> None:
        enter(env)
        if not saturated_until:
            saturated_until.append(loop.time() + 1.0)
        if loop.time() < saturated_until[0]:
            tries_while_saturated[env.event_id] += 1
            raise sa_exc.DBAPIError(
                "SELECT 1", {}, asyncpg.TooManyConnectionsError("sorry, too many clients already")
            )

    monkeypatch.setattr(bus.consumer, "_enter", no_room)
    events = await bus.emit(*((certified(f"s{i}"), f"s{i}") for i in range(3)))
    assert await bus.relay().drain() == 3

    async def settled() -> bool:
        return bool(await bus.dead_letters()) or await bus.all_applied(events)

    await bus.eventually(settled, within=30, what="all applied once there is room")
    assert not await bus.dead_letters(), "a saturated database parked events"
    ids = [e.event_id for e in events]
    assert await bus.applied() == Counter(dict.fromkeys(ids, 1))
    assert sum(tries_while_saturated.values()) >= 1
    if bus.rabbit is not None:  # (in-process, the redelivery timer paces the tries)
        for i in range(len(bus.retry_delays)):
            assert await bus.queue_depth(f"{bus.queue}.retry.{i}") == 0, "saturation spent a retry"
        # (backing off: about four tries of each event in that second; at once: over a hundred)
        assert sum(tries_while_saturated.values()) <= 3 * 8, f"hammered: {tries_while_saturated}"
        assert not bus.consumer.paused


async def test_which_failures_are_the_infrastructures(schema_db: MakeDb) -> None:
    """Conflicts, pool time-outs and a database with no room for a connection always; any
    other connection failure only when the database really does not answer (a handler's own
    ConnectionError, an SMTP server down, is the handler's failure)."""
    db = await schema_db()
    serialization = sa_exc.DBAPIError("UPDATE", {}, asyncpg.SerializationError("could not serialize"))
    deadlock = asyncpg.DeadlockDetectedError("deadlock detected")
    assert is_conflict(serialization) and is_conflict(deadlock)
    assert await is_transient(serialization, db) and await is_transient(deadlock, db)
    assert await is_transient(sa_exc.TimeoutError("QueuePool limit of size 4 overflow 4 reached"), db)
    assert not await is_transient(ConnectionError("smtp down"), db)  # the database answers
    # The database has no room for another connection (or is starting up): such a failure is
    # transient although a ping, a moment later, finds a free connection (the saga fault test).
    too_many = asyncpg.TooManyConnectionsError("sorry, too many clients already")
    for saturated in (
        too_many,
        sa_exc.DBAPIError("SELECT 1", {}, too_many),  # how SQLAlchemy raises it at checkout
        asyncpg.CannotConnectNowError("the database system is starting up"),
    ):
        assert await db.ping()
        assert await is_transient(saturated, db), saturated
    assert not await is_transient(ValueError("a bug"), db)
    unreachable = Database("postgresql://postgres@127.0.0.1:1/none", pool_size=1)
    try:
        assert await is_transient(ConnectionRefusedError("connection refused"), unreachable)
    finally:
        await unreachable.dispose()
