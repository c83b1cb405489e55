"""The bus suite's world (``libs/common/tests``): a publishing service and a consuming one,
joined by a transport. Its fixtures are in ``libs/common/tests/conftest.py``.

The publisher writes events to its outbox; the consumer, named ``ledger`` like a service,
keeps organisations with its inbox and timers. (Both services' tables live in one fresh
database per test, for speed; each has its own connection pool.) The SAME tests run over RabbitMQ (a per-test exchange and queue prefix of the real
broker: they FAIL under ``CI=true`` when there is none) and over the in-process transport,
through the ``transport_kind`` fixture.

The ledger's handlers are the kind a service writes:
- ``identity.organization_certified`` creates the organisation;
- ``identity.bank_account_changed`` needs the organisation (``RetryLater`` until it is
  certified) and ignores a change older than the one it holds (stale: changes nothing).
Every application of an effect appends a row to ``applied``: an event applied twice would
show as two rows. ``Ledger.deliveries`` counts raw deliveries, before the inbox.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import create_access_schema
from common.bus.consumer import Consumer
from common.bus.outbox import OutboxRelay, emit
from common.bus.rabbitmq import RETRY_HEADER, dead_letter_queue
from common.bus.transport import Transport
from common.db import Database
from common.events import BankAccountChanged, Envelope, EventPayload, OrganizationCertified
from common.tables import create_common_schema
from common.testing.rabbit import RabbitNamespace
from common.timers import RetryLater, TimerWorker

CONSUMER = "ledger"
FAST = [0.05, 0.1, 0.2]  # retry delays: three retries, then the dead-letter queue
CERTIFIED = OrganizationCertified.event_type
BANK_CHANGED = BankAccountChanged.event_type

EFFECT_TABLES = [
    "CREATE TABLE orgs (org_id text PRIMARY KEY, name text NOT NULL, bank text, "
    "bank_seq bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE applied (id bigserial PRIMARY KEY, event_id text NOT NULL, "
    "event_type text NOT NULL, org_id text NOT NULL, worker text)",
]

Eventually = Callable[..., Awaitable[Any]]


async def wait_until(
    predicate: Callable[[], Any], *, within: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after
    ``within`` seconds with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within}s (last value {value!r})")
        await asyncio.sleep(interval)


def certified(org_id: str) -> OrganizationCertified:
    return OrganizationCertified(
        org_id=org_id, name=f"广西{org_id}制造有限公司", uscc="91450100MA5KXXXX0X", kind="enterprise"
    )


def bank_changed(org_id: str, account: str) -> BankAccountChanged:
    return BankAccountChanged(
        org_id=org_id,
        account_name=f"{org_id} 公司",
        bank_name="中国工商银行",
        bank_region="广西南宁",
        branch_name="民族支行",
        account_number=account,
    )


class LedgerBug(Exception):
    """What a broken handler raises (the name must show up in the dead letter)."""


class Ledger(Consumer):
    """The consuming service under test."""

    def __init__(self, db: Database) -> None:
        super().__init__(CONSUMER, db)
        self.deliveries: Counter[str] = Counter()  # raw deliveries per event id, before the inbox
        self.calls: Counter[str] = Counter()  # handler invocations per event id
        self.broken: set[str] = set()  # event types whose handler has a bug right now
        self.on(CERTIFIED)(self._certified)
        self.on(BANK_CHANGED)(self._bank_changed)

    async def deliver(self, doc: dict[str, Any]) -> bool:
        self.deliveries[str(doc.get("event_id"))] += 1
        return await super().deliver(doc)

    def _enter(self, env: Envelope[Any]) -> None:
        self.calls[env.event_id] += 1
        if env.event_type in self.broken:
            raise LedgerBug(f"ledger cannot apply {env.event_type}")

    @staticmethod
    async def _record(session: AsyncSession, env: Envelope[Any], org_id: str) -> None:
        await session.execute(
            text("INSERT INTO applied (event_id, event_type, org_id) VALUES (:e, :t, :o)"),
            {"e": env.event_id, "t": env.event_type, "o": org_id},
        )

    async def _certified(self, session: AsyncSession, env: Envelope[Any]) -> None:
        self._enter(env)
        p: OrganizationCertified = env.payload
        await session.execute(
            text("INSERT INTO orgs (org_id, name) VALUES (:o, :n) ON CONFLICT (org_id) DO NOTHING"),
            {"o": p.org_id, "n": p.name},
        )
        await self._record(session, env, p.org_id)

    async def _bank_changed(self, session: AsyncSession, env: Envelope[Any]) -> None:
        self._enter(env)
        p: BankAccountChanged = env.payload
        seen = (
            await session.execute(
                text("SELECT bank_seq FROM orgs WHERE org_id = :o FOR UPDATE"), {"o": p.org_id}
            )
        ).scalar_one_or_none()
        if seen is None:
            raise RetryLater(f"organization {p.org_id} is not certified yet")
        if env.sequence <= seen:
            return  # stale: a newer change is already reflected
        await session.execute(
            text("UPDATE orgs SET bank = :b, bank_seq = :s WHERE org_id = :o"),
            {"b": p.account_number, "s": env.sequence, "o": p.org_id},
        )
        await self._record(session, env, p.org_id)


@dataclass
class DeadLetterView:
    """A dead letter as an operator sees it, whichever the store."""

    event_id: str
    error: str
    error_type: str
    attempts: int
    headers: dict[str, Any] | None = None  # RabbitMQ only
    timer_kind: str | None = None  # in-process only


async def make_schema(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(create_common_schema)
        await conn.run_sync(create_access_schema)  # every service runtime reads it at start
        for ddl in EFFECT_TABLES:
            await conn.execute(text(ddl))


@dataclass
class Bus:
    kind: str
    transport: Transport
    publisher_db: Database
    consumer_db: Database
    consumer: Ledger
    timers: TimerWorker
    rabbit: RabbitNamespace | None
    retry_delays: list[float]
    relays: list[OutboxRelay] = field(default_factory=list)
    extra_dbs: list[Database] = field(default_factory=list)

    eventually = staticmethod(wait_until)

    @property
    def queue(self) -> str:
        assert self.rabbit is not None
        return f"{self.rabbit.prefix}{CONSUMER}"

    async def start(self) -> Bus:
        """Subscribe the consumer to the (started) transport and start its timer worker."""
        await self.transport.subscribe(self.consumer)
        self.timers.start()
        return self

    async def close(self) -> None:
        for relay in self.relays:
            await relay.stop()
        await self.timers.stop()
        await self.transport.stop()
        for db in (self.publisher_db, self.consumer_db, *self.extra_dbs):
            await db.dispose()

    # --- the publishing service --------------------------------------------------------------

    async def emit(self, *payloads: tuple[EventPayload, str]) -> list[Envelope[Any]]:
        """Write (payload, aggregate id) pairs to the outbox in one committed transaction."""
        async with self.publisher_db.transaction() as session:
            return [await emit(session, p, aggregate_id=agg) for p, agg in payloads]

    def relay(
        self, *, db: Database | None = None, transport: Any = None, start: bool = False, **kw: Any
    ) -> OutboxRelay:
        kw.setdefault("poll_interval", 0.05)
        kw.setdefault("retry_delays", FAST)
        relay = OutboxRelay(db or self.publisher_db, transport or self.transport, **kw)
        self.relays.append(relay)
        if start:
            relay.start()
        return relay

    def new_publisher_db(self) -> Database:
        """Another connection pool on the publisher's database (another process, in effect)."""
        db = Database(self.publisher_db.url, pool_size=2)
        self.extra_dbs.append(db)
        return db

    async def publisher_transport(self) -> Transport:
        """A transport for another publishing process: its own connection to the broker.
        In-process there is only one bus per process."""
        if self.rabbit is None:
            return self.transport
        t = self.rabbit.transport(retry_delays=self.retry_delays, publish_timeout=2.0)
        await t.start()
        return t

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.publisher_db.session() as s:
            rows = await s.execute(
                text(
                    "SELECT id, aggregate_id, sequence, sent_at, attempts, last_error, body "
                    "FROM outbox ORDER BY created_at, id"
                )
            )
            return [dict(r._mapping) for r in rows]

    async def pending(self) -> int:
        return sum(1 for r in await self.outbox() if r["sent_at"] is None)

    # --- the consuming service ---------------------------------------------------------------

    @property
    def observer_db(self) -> Database:
        """A direct way into the consumer's database for assertions, even while the
        consumer's own pool is cut off (both services' tables share one database)."""
        return self.publisher_db

    async def applied(self) -> Counter[str]:
        """How many times each event's effect was applied."""
        async with self.observer_db.session() as s:
            rows = await s.execute(text("SELECT event_id FROM applied"))
            return Counter(r[0] for r in rows)

    async def inbox(self) -> Counter[str]:
        async with self.observer_db.session() as s:
            rows = await s.execute(text("SELECT event_id FROM inbox WHERE consumer = :c"), {"c": CONSUMER})
            return Counter(r[0] for r in rows)

    async def org(self, org_id: str) -> dict[str, Any] | None:
        async with self.observer_db.session() as s:
            row = (await s.execute(text("SELECT * FROM orgs WHERE org_id = :o"), {"o": org_id})).first()
            return dict(row._mapping) if row else None

    async def timer_rows(self) -> list[dict[str, Any]]:
        async with self.observer_db.session() as s:
            rows = await s.execute(text("SELECT * FROM timers ORDER BY id"))
            return [dict(r._mapping) for r in rows]

    async def all_applied(self, envelopes: list[Envelope[Any]]) -> bool:
        applied = await self.applied()
        return all(applied[e.event_id] >= 1 for e in envelopes)

    async def dead_letters(self) -> list[DeadLetterView]:
        """RabbitMQ: the messages in ``<queue>.dlq`` (peeked, left in place); in-process:
        the parked (dead) timers of the consumer's database."""
        if self.rabbit is None:
            return [
                DeadLetterView(
                    event_id=str(t["payload"].get("event", {}).get("event_id")),
                    error=t["last_error"] or "",
                    error_type=(t["last_error"] or "").split(":", 1)[0],
                    attempts=t["attempts"],
                    timer_kind=t["kind"],
                )
                for t in await self.timer_rows()
                if t["state"] == "dead"
            ]
        connection = await aio_pika.connect(self.rabbit.url, timeout=10)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(dead_letter_queue(self.queue), ensure=True)
            views = []
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                headers = dict(message.headers or {})
                views.append(
                    DeadLetterView(
                        event_id=str(message.message_id),
                        error=str(headers.get("x-error", "")),
                        error_type=str(headers.get("x-error-type", "")),
                        attempts=int(headers.get(RETRY_HEADER, 0)) + 1,  # type: ignore[arg-type]
                        headers=headers,
                    )
                )
            await channel.close()  # returns every peeked message to the queue
            return views
        finally:
            await connection.close()

    async def queue_depth(self, name: str) -> int:
        """Ready messages in a queue of this namespace (RabbitMQ only)."""
        assert self.rabbit is not None
        connection = await aio_pika.connect(self.rabbit.url, timeout=10)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await connection.close()

    async def deliver_raw(self, doc: dict[str, Any]) -> None:
        """Hand one document to the transport as the relay would (bypassing the outbox)."""
        await self.transport.publish(doc)

    async def publish_bytes(self, body: bytes, routing_key: str) -> None:
        """RabbitMQ only: put bytes on the exchange that no envelope could produce."""
        assert self.rabbit is not None
        connection = await aio_pika.connect(self.rabbit.url, timeout=10)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.rabbit.exchange, ensure=True)
            await exchange.publish(
                aio_pika.Message(body=body, message_id="garbage-1"), routing_key=routing_key
            )
        finally:
            await connection.close()


def body_of(envelope: Envelope[Any]) -> dict[str, Any]:
    """The JSON document of an envelope, as it travels (a fresh copy)."""
    return json.loads(json.dumps(envelope.to_json()))


MakeBus = Callable[..., Awaitable[Bus]]
MakeDb = Callable[[], Awaitable[Database]]
