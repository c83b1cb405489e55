"""Event consumers with an idempotent inbox.

A service declares one :class:`Consumer` (named after its queue) and registers a handler per
event type. :meth:`Consumer.process` records (consumer, event_id) in the ``inbox`` table and
runs the handler in the *same* transaction, so an event's effect is applied exactly once
however often it is delivered. Handlers raise :class:`RetryLater` when the event arrived
before its aggregate is ready, and simply return (changing nothing) when it is stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from common.context import tracking
from common.db import Database
from common.events import Envelope, payload_model
from common.metrics import EVENTS_CONSUMED
from common.tables import InboxRow, TimerRow
from common.timers import Poison, RetryLater, schedule, utcnow

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]

REDELIVER_TIMER = "bus.redeliver"


class Consumer:
    def __init__(self, name: str, db: Database | None = None) -> None:
        self.name = name
        self.db = db
        self.handlers: dict[str, Handler] = {}

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.handlers[event_type] = fn
            return fn

        return register

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    def parse(self, doc: dict[str, Any]) -> Envelope[Any]:
        try:
            env = Envelope.from_json(doc)
        except ValidationError as exc:
            raise Poison(f"malformed envelope: {exc.error_count()} error(s)") from exc
        if payload_model(env.event_type, env.version) is None and env.event_type in self.handlers:
            raise Poison(f"unknown event version {env.event_type} v{env.version}")
        return env

    async def process(self, session: AsyncSession, doc: dict[str, Any]) -> bool:
        """Apply one event in the caller's transaction; False when it was a duplicate."""
        env = self.parse(doc)
        handler = self.handlers.get(env.event_type)
        if handler is None:
            return False
        inserted = await session.execute(
            pg_insert(InboxRow)
            .values(consumer=self.name, event_id=env.event_id, event_type=env.event_type)
            .on_conflict_do_nothing()
            .returning(col(InboxRow.event_id))
        )
        if inserted.first() is None:
            log.info("event_duplicate", consumer=self.name, event_type=env.event_type, event_id=env.event_id)
            EVENTS_CONSUMED.labels(self.name, env.event_type, "duplicate").inc()
            return False
        with tracking(correlation_id=env.correlation_id, causation_id=env.event_id):
            await handler(session, env)
        EVENTS_CONSUMED.labels(self.name, env.event_type, "applied").inc()
        return True

    def _db(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"consumer {self.name} has no database")
        return self.db

    async def deliver(self, doc: dict[str, Any]) -> bool:
        """Apply one event in its own transaction (committed before this returns)."""
        async with self._db().transaction() as session:
            return await self.process(session, doc)

    async def defer(self, doc: dict[str, Any], exc: Exception, first_delay: float) -> None:
        """Keep a failed in-process delivery durably in this consumer's database: a timer
        redelivers it with backoff, or it is parked at once if it can never succeed."""
        poison = isinstance(exc, Poison)
        async with self._db().transaction() as session:
            await schedule(
                session,
                REDELIVER_TIMER,
                f"{self.name}:{doc.get('event_id')}",
                utcnow() + timedelta(seconds=first_delay),
                {"consumer": self.name, "event": doc},
                attempts=1,
                state="dead" if poison else "scheduled",
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
            )
        outcome = "parked" if poison else "deferred"
        EVENTS_CONSUMED.labels(self.name, str(doc.get("event_type")), outcome).inc()
        level = log.info if isinstance(exc, RetryLater) else log.warning
        level("event_" + outcome, consumer=self.name, event_type=doc.get("event_type"), error=str(exc))

    async def redeliver(self, session: AsyncSession, timer: TimerRow) -> None:
        """Timer handler for :data:`REDELIVER_TIMER`."""
        await self.process(session, timer.payload["event"])
