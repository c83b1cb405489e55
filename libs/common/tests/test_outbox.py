"""The outbox and its relay: an event exists iff its state change committed, and it is
published exactly once in effect, whatever crashes and however many relays run.

Run on RabbitMQ and in-process alike (``transport_kind``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from common.bus.consumer import Consumer, Unhandled
from common.bus.outbox import NOTIFY_CHANNEL, emit
from common.db import connect, raw
from common.events import Envelope, OrganizationCertified, ProviderApproved
from common.testing.bus import Bus, MakeDb, bank_changed, body_of, certified, wait_until
from common.timers import Poison, RetryLater

# --- the envelope: unit level --------------------------------------------------------------------


def test_envelope_round_trip_restores_the_typed_payload() -> None:
    env = Envelope.wrap(
        certified("org-1"), aggregate_id="org-1", sequence=7, correlation_id="req-1", causation_id="evt-0"
    )
    wire = json.loads(json.dumps(env.to_json(), ensure_ascii=False))  # what travels

    assert wire["event_type"] == "identity.organization_certified"
    assert wire["version"] == 1
    assert wire["payload"] == {
        "org_id": "org-1",
        "name": "广西org-1制造有限公司",
        "uscc": "91450100MA5KXXXX0X",
        "kind": "enterprise",
    }
    back = Envelope.from_json(wire)
    assert isinstance(back.payload, OrganizationCertified)
    assert back == env  # event_id, occurred_at, sequence, correlation and causation ids included
    assert back.to_json() == wire


def test_envelope_of_an_unknown_event_keeps_its_payload_as_data() -> None:
    wire = Envelope.wrap(ProviderApproved(org_id="p-1", name="桂林检测"), aggregate_id="p-1").to_json()
    wire.update(event_type="catalog.provider_renamed")  # a type this build does not know
    back = Envelope.from_json(wire)
    assert back.payload == {"org_id": "p-1", "name": "桂林检测"}

    wire_v2 = {**body_of(Envelope.wrap(certified("o"), aggregate_id="o")), "version": 2}
    assert Envelope.from_json(wire_v2).payload["org_id"] == "o"  # parsed, but not typed


def test_a_consumer_retries_an_unknown_version_and_refuses_a_malformed_envelope_of_a_type_it_handles() -> (
    None
):
    consumer = Consumer("ledger")

    @consumer.on(OrganizationCertified.event_type)
    async def handle(*_: Any) -> None: ...

    good = body_of(Envelope.wrap(certified("o"), aggregate_id="o"))

    assert isinstance(consumer.parse(good).payload, OrganizationCertified)
    # A newer version than this replica knows is not poison: retried (then parked) with the
    # reason, for a replica that knows it.
    with pytest.raises(
        Unhandled, match=r"unknown_version: unknown event version identity\.organization_certified v9"
    ):
        consumer.parse({**good, "version": 9})
    with pytest.raises(Unhandled) as raised:
        consumer.parse({**good, "version": 9})
    assert isinstance(raised.value, RetryLater) and not isinstance(raised.value, Poison)
    assert raised.value.reason == "unknown_version"
    with pytest.raises(Poison, match="malformed envelope"):
        consumer.parse({k: v for k, v in good.items() if k != "aggregate_id"})
    # An unknown version of a type it does not handle is none of its business.
    assert consumer.parse({**good, "event_type": "identity.other", "version": 9}).version == 9


# --- the outbox: sequence numbers ----------------------------------------------------------------


async def test_sequence_numbers_count_per_aggregate_without_gaps(schema_db: MakeDb) -> None:
    db = await schema_db()
    async with db.transaction() as s:
        for _ in range(3):
            await emit(s, certified("A"), aggregate_id="A")
        await emit(s, certified("B"), aggregate_id="B")
    with contextlib.suppress(RuntimeError):
        async with db.transaction() as s:  # rolled back: its numbers are given back
            await emit(s, certified("A"), aggregate_id="A")
            raise RuntimeError("the request failed")
    async with db.transaction() as s:
        await emit(s, bank_changed("A", "6222"), aggregate_id="A")
        await emit(s, certified("B"), aggregate_id="B")
    # Only the counter assigns sequences: a number passed by hand (which a consumer treating
    # "sequence <= seen" as stale would drop, or which would make it drop real events) is
    # refused, and its transaction writes nothing.
    with pytest.raises(TypeError, match="sequence"):
        async with db.transaction() as s:
            await emit(s, certified("B"), aggregate_id="B", sequence=99)  # type: ignore[call-arg]

    # Twenty concurrent transactions on one aggregate: each gets its own number.
    async def one() -> None:
        async with db.transaction() as s:
            await emit(s, certified("C"), aggregate_id="C")

    await asyncio.gather(*(one() for _ in range(20)))

    async with db.session() as s:
        rows = (await s.execute(text("SELECT aggregate_id, sequence, body FROM outbox"))).all()
    seqs: dict[str, list[int]] = {}
    for aggregate, seq, body in rows:
        assert body["sequence"] == seq and body["aggregate_id"] == aggregate
        seqs.setdefault(aggregate, []).append(seq)
    assert sorted(seqs["A"]) == [1, 2, 3, 4]
    assert sorted(seqs["B"]) == [1, 2]
    assert sorted(seqs["C"]) == list(range(1, 21))


async def test_each_event_written_is_one_statement_and_the_first_wakes_the_relays(schema_db: MakeDb) -> None:
    """The outbox row and the relays' wake-up (a NOTIFY delivered at commit, once per
    transaction) go in the event's one statement: no round trip of their own."""
    db = await schema_db()
    listener = await connect(db.url)
    woken: list[str] = []
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: woken.append(args[2]))
    try:
        async with db.transaction() as s:
            sent: list[str] = []
            (await raw(s)).add_query_logger(lambda record: sent.append(record.query))
            await emit(s, certified("A"), aggregate_id="A")
            await emit(s, certified("B"), aggregate_id="B")
        assert len([q for q in sent if not q.startswith(("BEGIN", "COMMIT"))]) == 2, sent
        await wait_until(lambda: woken == [NOTIFY_CHANNEL], within=5, what="the commit's NOTIFY")
        await asyncio.sleep(0.2)
        assert woken == [NOTIFY_CHANNEL]  # one per transaction, not one per event
    finally:
        await listener.close()


# --- 1. a rolled-back transaction publishes nothing ----------------------------------------------


async def test_an_event_written_in_a_rolled_back_transaction_is_never_published(bus: Bus) -> None:
    """...while a committed one is published at once: the relay polls once a minute here, so
    only its commit's NOTIFY can wake it in time."""
    relay = bus.relay(poll_interval=60, listen=True, start=True)
    opening = await bus.emit((certified("first"), "first"))  # the relay's opening round may take it
    await bus.eventually(lambda: bus.all_applied(opening), within=5)

    with contextlib.suppress(RuntimeError):
        async with bus.publisher_db.transaction() as s:
            lost = await emit(s, certified("ghost"), aggregate_id="ghost")
            raise RuntimeError("validation failed after the event was written")
    (sentinel,) = await bus.emit((certified("real"), "real"))  # committed after it
    await bus.eventually(lambda: bus.all_applied([sentinel]), within=5, what="published on NOTIFY")
    await relay.stop()

    expected = [opening[0].event_id, sentinel.event_id]
    assert [r["id"] for r in await bus.outbox()] == expected  # no row for the lost one
    assert lost.event_id not in bus.consumer.deliveries
    assert dict(bus.consumer.deliveries) == dict.fromkeys(expected, 1)
    assert await bus.org("ghost") is None
    assert await bus.inbox() == Counter(dict.fromkeys(expected, 1))
    assert await bus.pending() == 0


# --- 2. a relay killed between the broker's confirmation and its commit --------------------------


class CrashAfterPublish:
    """A transport that dies (hangs, to be killed) right after the N-th publish was confirmed,
    before the relay could commit ``sent_at``."""

    def __init__(self, inner: Any, crash_on: int) -> None:
        self.inner = inner
        self.crash_on = crash_on
        self.confirmed: list[str] = []
        self.crashed = asyncio.Event()

    async def publish(self, doc: dict[str, Any]) -> None:
        await self.inner.publish(doc)
        self.confirmed.append(doc["event_id"])
        if len(self.confirmed) == self.crash_on:
            self.crashed.set()
            await asyncio.Event().wait()  # until the process is killed


async def test_a_relay_killed_between_publish_and_mark_sent_causes_a_harmless_redelivery(bus: Bus) -> None:
    # One aggregate's events: the relay hands them over one after the other (different
    # aggregates' rows have their confirmations in flight together).
    events = await bus.emit(*((certified(f"k{i}"), "k") for i in range(3)))
    ids = {e.event_id for e in events}
    doomed = CrashAfterPublish(bus.transport, crash_on=2)
    task = asyncio.create_task(bus.relay(transport=doomed).run_once())
    await asyncio.wait_for(doomed.crashed.wait(), 10)
    task.cancel()  # killed: its transaction never commits
    with contextlib.suppress(asyncio.CancelledError):
        await task

    # Two events were confirmed and reach the consumer, yet all three rows are still pending.
    assert len(doomed.confirmed) == 2
    assert await bus.pending() == 3
    await bus.eventually(lambda: sum(bus.consumer.deliveries.values()) == 2)
    await bus.eventually(lambda: bus.all_applied([e for e in events if e.event_id in doomed.confirmed]))

    # A new relay (a restarted process: another connection pool) publishes all three again.
    assert await bus.relay(db=bus.new_publisher_db()).drain() == 3
    await bus.eventually(lambda: bus.all_applied(events))
    await bus.eventually(
        lambda: sum(bus.consumer.deliveries.values()) == 5, what="5 raw deliveries (2 of them again)"
    )
    assert {i: bus.consumer.deliveries[i] for i in doomed.confirmed} == dict.fromkeys(doomed.confirmed, 2)
    assert await bus.applied() == Counter(dict.fromkeys(ids, 1))  # the redelivery changed nothing
    assert await bus.inbox() == Counter(dict.fromkeys(ids, 1))
    assert await bus.pending() == 0
    assert [r["attempts"] for r in await bus.outbox()] == [0, 0, 0]  # no failure was recorded


# --- 5. two relays on one database ---------------------------------------------------------------


class Counting:
    """Counts what one relay handed to the transport; with ``after``, its first row waits
    (at most 10 s) until that other relay has handed over one of its own, so both relays are
    at work at once however the machine schedules them."""

    def __init__(self, inner: Any, after: Counting | None = None) -> None:
        self.inner = inner
        self.published: list[str] = []
        self.started = asyncio.Event()
        self.after = after

    async def publish(self, doc: dict[str, Any]) -> None:
        if self.after is not None and not self.published:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.after.started.wait(), 10)
        await self.inner.publish(doc)
        self.published.append(doc["event_id"])
        self.started.set()
        await asyncio.sleep(0)  # let the other relay in between rows


async def test_two_relays_never_publish_one_row_twice(bus: Bus) -> None:
    n = 120
    events = await bus.emit(*((certified(f"r{i % 20}"), f"r{i % 20}") for i in range(n)))
    b = Counting(await bus.publisher_transport())
    a = Counting(await bus.publisher_transport(), after=b)
    bus.relay(db=bus.new_publisher_db(), transport=a, batch_size=6, name="relay-a", start=True)
    bus.relay(db=bus.new_publisher_db(), transport=b, batch_size=6, name="relay-b", start=True)

    await bus.eventually(lambda: bus.all_applied(events), within=30, what=f"{n} events applied")
    await bus.eventually(lambda: sum(bus.consumer.deliveries.values()) >= n)
    ids = {e.event_id for e in events}

    assert len(a.published) + len(b.published) == n  # no row handed over twice...
    assert set(a.published) | set(b.published) == ids
    assert a.published and b.published, "both relays took part"
    assert set(bus.consumer.deliveries) == ids
    assert max(bus.consumer.deliveries.values()) == 1  # ...and the broker received each once
    assert await bus.applied() == Counter(dict.fromkeys(ids, 1))
    assert sum((await bus.inbox()).values()) == n
    assert await bus.pending() == 0


# --- the relay keeps what it could not publish ---------------------------------------------------


class Flaky:
    """Refuses the given events a number of times each."""

    def __init__(self, inner: Any, failures: dict[str, int]) -> None:
        self.inner = inner
        self.failures = failures

    async def publish(self, doc: dict[str, Any]) -> None:
        if self.failures.get(doc["event_id"], 0) > 0:
            self.failures[doc["event_id"]] -= 1
            raise ConnectionError("broker unreachable")
        await self.inner.publish(doc)


@pytest.mark.parametrize("transport_kind", ["inprocess"])
async def test_a_failed_publish_stays_pending_with_its_error_and_is_retried_with_backoff(bus: Bus) -> None:
    first = await bus.emit((certified("f1"), "f1"))
    second = await bus.emit((certified("f2"), "f2"))
    relay = bus.relay(transport=Flaky(bus.transport, {first[0].event_id: 2}), retry_delays=[30])
    assert await relay.run_once() == 0

    rows = await bus.outbox()
    assert [(r["id"], r["sent_at"], r["attempts"]) for r in rows] == [
        (first[0].event_id, None, 1),
        (second[0].event_id, None, 0),
    ]
    assert rows[0]["last_error"] == "ConnectionError: broker unreachable"
    # The failed row waits out its backoff (30 s); the batch stopped at it.
    assert await relay.run_once() == 1
    assert dict(bus.consumer.deliveries) == {second[0].event_id: 1}

    async with bus.publisher_db.transaction() as s:  # the backoff has passed
        await s.execute(text("UPDATE outbox SET available_at = now()"))
    assert await relay.run_once() == 0  # fails once more
    assert [r["attempts"] for r in await bus.outbox()] == [2, 0]
    async with bus.publisher_db.transaction() as s:
        await s.execute(text("UPDATE outbox SET available_at = now()"))
    assert await relay.drain() == 1
    assert await bus.applied() == Counter({first[0].event_id: 1, second[0].event_id: 1})
    assert await bus.pending() == 0


async def test_an_aggregates_events_written_together_are_published_in_sequence_order(bus: Bus) -> None:
    """Order is not guaranteed end to end (retries, concurrent handling, replicas), but a relay
    hands over an aggregate's events in the order they were written, sparing its consumers
    needless RetryLater rounds."""
    events = await bus.emit(
        (certified("s1"), "s1"), *((bank_changed("s1", f"62{i:02}"), "s1") for i in range(9))
    )
    order = Counting(bus.transport)
    assert await bus.relay(transport=order).drain() == 10
    assert order.published == [e.event_id for e in events]
    assert [e.sequence for e in events] == list(range(1, 11))

    # Whatever order the consumer ends up handling them in, the newest change holds.
    ids = {e.event_id for e in events}
    await bus.eventually(lambda: _inbox_has(bus, ids), what="every event acknowledged")
    assert await bus.org("s1") == {
        "org_id": "s1",
        "name": "广西s1制造有限公司",
        "bank": "6208",
        "bank_seq": 10,
    }
    assert not await bus.dead_letters()


async def _inbox_has(bus: Bus, ids: set[str]) -> bool:
    return set(await bus.inbox()) == ids
