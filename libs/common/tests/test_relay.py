"""The relay under a broker outage and a backlog (issue 5, item 6).

It used to back off per row while the broker was down (rows reached the 600 s backoff within
minutes, then newer rows of the same aggregate overtook them), publish one row at a time
inside one transaction, and sort the whole backlog for every batch. Now it backs off as a
whole, keeps an aggregate's order, has a batch's confirmations in flight together, and
takes the next batch straight off an index."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from common.bus.outbox import NEXT_BATCH, emit
from common.testing.bus import Bus, MakeBus, MakeDb, bank_changed, certified
from common.testing.proxy import TcpProxy


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(
        parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}")
    )


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_while_the_broker_is_away_the_relay_backs_off_as_a_whole_and_pushes_no_row_back(
    make_bus: MakeBus, bus_broker: Any
) -> None:
    parts = urlsplit(bus_broker.url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672) as proxy:
        url = via(bus_broker.url, proxy.port) + "?reconnect_interval=0.2"
        bus = await make_bus(amqp_url=url, publish_timeout=0.5)
        proxy.cut()
        await bus.eventually(lambda: not bus.transport.health()["broker"], what="the broker is away")
        relay = bus.relay(start=True, listen=False)  # polls every 0.05 s, retry delays up to 0.2 s
        events = await bus.emit(*((certified(f"o{i}"), f"o{i}") for i in range(6)))
        await bus.eventually(lambda: relay.failures >= 3, what="the relay failed three rounds")
        await asyncio.sleep(0.5)

        rows = await _rows(bus)
        assert all(r["due"] for r in rows), "no row was pushed back: the relay backs off, not the rows"
        attempts = sum(r["attempts"] for r in rows)
        assert attempts >= 3, "each round's attempt is recorded"
        assert attempts <= relay.failures + 1, "one attempt per round (the batch's first row), not per row"
        assert relay.failures < 10, f"it backed off exponentially ({relay.failures} rounds in ~1 s)"

        proxy.restore()
        relay.nudge()
        await bus.eventually(lambda: bus.all_applied(events), within=30, what="all applied after the outage")
        assert await bus.pending() == 0


async def _rows(bus: Bus) -> list[dict[str, Any]]:
    async with bus.publisher_db.session() as s:
        result = await s.execute(
            text("SELECT id, attempts, available_at <= now() AS due FROM outbox WHERE sent_at IS NULL")
        )
        return [dict(r._mapping) for r in result]


class RefuseOnce:
    """A reachable broker that refuses one given event once (it stays healthy)."""

    def __init__(self, inner: Any, refuse: str) -> None:
        self.inner, self.refuse = inner, refuse
        self.published: list[str] = []

    def health(self) -> dict[str, bool]:
        return {"broker": True}

    async def publish(self, doc: dict[str, Any]) -> None:
        if doc["event_id"] == self.refuse:
            self.refuse = ""
            raise RuntimeError("PRECONDITION_FAILED: message refused")
        await self.inner.publish(doc)
        self.published.append(doc["event_id"])


@pytest.mark.parametrize("transport_kind", ["inprocess"])
async def test_a_newer_event_never_overtakes_an_older_one_of_its_aggregate_that_is_backing_off(
    bus: Bus,
) -> None:
    first, second = await bus.emit((certified("a"), "a"), (bank_changed("a", "6222 1"), "a"))
    (other,) = await bus.emit((certified("b"), "b"))
    flaky = RefuseOnce(bus.transport, refuse=first.event_id)
    relay = bus.relay(transport=flaky, retry_delays=[30])
    assert await relay.run_once() == 0  # the first row refused: it backs off 30 s
    assert await relay.run_once() == 1  # another aggregate goes on...
    assert flaky.published == [other.event_id]  # ...but a's second event waits behind its first
    assert await relay.run_once() == 0

    async with bus.publisher_db.transaction() as s:
        await s.execute(text("UPDATE outbox SET available_at = now()"))  # the backoff has passed
    assert await relay.drain() == 2
    assert flaky.published == [other.event_id, first.event_id, second.event_id]


class InFlight:
    """Counts how many publishes wait for their confirmation at once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0

    def health(self) -> dict[str, bool]:
        return self.inner.health()

    async def publish(self, doc: dict[str, Any]) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.inner.publish(doc)
        finally:
            self.now -= 1


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_a_batch_is_published_with_its_confirmations_in_flight_together(bus: Bus) -> None:
    events = await bus.emit(*((certified(f"c{i}"), f"c{i}") for i in range(40)))
    counting = InFlight(bus.transport)
    assert await bus.relay(transport=counting).drain() == 40
    assert counting.most > 10, f"at most {counting.most} publish(es) in flight"
    await bus.eventually(lambda: bus.all_applied(events), within=20)


async def test_the_next_batch_comes_off_an_index_without_sorting_the_backlog(schema_db: MakeDb) -> None:
    db = await schema_db()
    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO outbox (id, event_type, aggregate_id, sequence, body, created_at, available_at, sent_at) "
                "SELECT 'e' || g, 'x.y', 'agg' || (g % 500), g / 500 + 1, '{}'::jsonb, "
                "now() - interval '1 hour' + g * interval '1 ms', now() - interval '1 hour', "
                "CASE WHEN g % 3 = 0 THEN now() END FROM generate_series(1, 30000) g"
            )
        )
        await s.execute(text("ANALYZE outbox"))
    async with db.transaction() as s:
        plan = "\n".join(r[0] for r in await s.execute(text("EXPLAIN " + str(NEXT_BATCH)), {"n": 100}))
    assert "ix_outbox_next" in plan, plan
    assert "Sort" not in plan, plan


# --- one aggregate's chain in sequence order, whatever the relays do (issue 12, F8) ---------------


class Recorder:
    """What the broker accepted, in order, across every relay that publishes through one."""

    def __init__(self) -> None:
        self.order: list[str] = []


class Holding:
    """A transport that holds one event's publish (its relay keeps the row locked meanwhile)
    until released, and records every confirmed publish in a shared order."""

    def __init__(self, inner: Any, recorder: Recorder, hold: str = "") -> None:
        self.inner, self.recorder, self.hold = inner, recorder, hold
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    def health(self) -> dict[str, bool]:
        return {"broker": True}

    async def publish(self, doc: dict[str, Any]) -> None:
        if doc["event_id"] == self.hold:
            self.reached.set()
            await self.released.wait()
        await self.inner.publish(doc)
        self.recorder.order.append(doc["event_id"])


async def test_a_row_another_relay_is_publishing_holds_back_the_later_rows_of_its_aggregate(bus: Bus) -> None:
    """Relay A is slow on row N of aggregate a (its confirmation has not come): relay B, which
    skips the locked row, must not publish N+1 meanwhile; a's chain goes out N, N+1."""
    (first,) = await bus.emit((certified("a"), "a"))
    (second,) = await bus.emit((bank_changed("a", "6222 1"), "a"))
    (other,) = await bus.emit((certified("b"), "b"))
    seen = Recorder()
    slow = Holding(await bus.publisher_transport(), seen, hold=first.event_id)
    quick = Holding(await bus.publisher_transport(), seen)
    relay_a = bus.relay(db=bus.new_publisher_db(), transport=slow, name="relay-a", batch_size=1)
    relay_b = bus.relay(db=bus.new_publisher_db(), transport=quick, name="relay-b")

    held = asyncio.create_task(relay_a.run_once())
    try:
        await asyncio.wait_for(slow.reached.wait(), 10)
        await relay_b.run_once()
        # Another aggregate goes on, but a's N+1 waits for the N relay A holds.
        assert seen.order == [other.event_id], "relay B published past the row relay A holds"
    finally:
        slow.released.set()
        from_a = await held
    assert from_a + await relay_b.drain() == 2
    assert seen.order == [other.event_id, first.event_id, second.event_id]
    await bus.eventually(lambda: bus.all_applied([first, second, other]))
    assert (await bus.org("a") or {}).get("bank") == "6222 1"


async def test_a_row_refused_at_one_relay_holds_back_its_aggregate_at_every_relay(bus: Bus) -> None:
    (first,) = await bus.emit((certified("a"), "a"))
    (second,) = await bus.emit((bank_changed("a", "6222 1"), "a"))
    seen = Recorder()
    refusing = RefuseOnce(Holding(await bus.publisher_transport(), seen), refuse=first.event_id)
    relay_a = bus.relay(db=bus.new_publisher_db(), transport=refusing, name="relay-a", retry_delays=[30])
    relay_b = bus.relay(
        db=bus.new_publisher_db(), transport=Holding(await bus.publisher_transport(), seen), name="relay-b"
    )
    assert await relay_a.run_once() == 0  # N refused: it backs off 30 s
    assert await relay_b.run_once() == 0  # N+1 waits behind it at the other relay too
    assert await relay_a.run_once() == 0
    assert seen.order == []

    async with bus.publisher_db.transaction() as s:
        await s.execute(text("UPDATE outbox SET available_at = now()"))  # the backoff has passed
    assert await relay_b.drain() == 2
    assert seen.order == [first.event_id, second.event_id]
    await bus.eventually(lambda: bus.all_applied([first, second]))


async def test_an_aggregates_rows_go_out_in_sequence_order_when_their_transactions_began_the_other_way(
    bus: Bus,
) -> None:
    """A transaction's rows carry its start time (now()). The later one to begin may take the
    aggregate's counter first: its row N is older by sequence, younger by created_at."""
    early = bus.publisher_db.sessions()
    await early.begin()
    await early.execute(text("SELECT 1"))  # now() of this transaction is fixed here
    await asyncio.sleep(0.01)
    (first,) = await bus.emit((certified("a"), "a"))  # began later, commits first: N
    second = await emit(early, bank_changed("a", "6222 1"), aggregate_id="a")  # N+1
    await early.commit()
    await early.close()
    assert (first.sequence, second.sequence) == (1, 2)

    seen = Recorder()
    assert await bus.relay(transport=Holding(bus.transport, seen)).drain() == 2
    assert seen.order == [first.event_id, second.event_id]
