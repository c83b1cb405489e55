"""Event consumers with an idempotent inbox.

A service declares one :class:`Consumer` (named after its queue) and registers a handler per
event type. :meth:`Consumer.process` records (consumer, event_id) in the ``inbox`` table and
runs the handler in the *same* transaction, so an event's effect is applied exactly once
however often it is delivered. Handlers raise :class:`RetryLater` when the event arrived
before its aggregate is ready, and simply return (changing nothing) when it is stale.

What this replica cannot handle is never acknowledged unapplied: an event type it has no
handler for (a newer replica bound the shared queue to it during a rolling upgrade) or a
version newer than the models it knows raises :class:`Unhandled` (``no_handler`` /
``unknown_version``), a :class:`RetryLater`: retried later, then parked with that reason.
Older versions are upcast to the current one (:mod:`common.bus.versions`).

Transient infrastructure failures (the database unreachable or with no room for another
connection, a pool time-out, a serialization failure or a deadlock) are no failure of the
event: :meth:`deliver_patiently` pauses this consumer until the database answers (backing
off first, growing, when it has no room) and tries again, without spending the event's
retries (:func:`common.bus.transient.is_transient`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from common import tracing
from common.bus.transient import is_saturation, is_transient, wait_for_database
from common.bus.versions import current_version, upcast
from common.context import tracking
from common.db import Database, raw
from common.events import Envelope, payload_model
from common.metrics import EVENTS_CONSUMED
from common.tables import TimerRow
from common.timers import Poison, RetryLater, schedule, utcnow

log = structlog.get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope[Any]], Awaitable[None]]

REDELIVER_TIMER = "bus.redeliver"

# How long a consumer stays paused after the database said it has no room for another
# connection (too many clients, the pool's time-out), doubling while it keeps saying so: a
# ping then may well succeed at once, and trying again at once would add to the crowd.
SATURATION_BACKOFF = 0.1
SATURATION_BACKOFF_MAX = 5.0


class Unhandled(RetryLater):
    """This replica cannot apply the event (yet): retried later, then parked with the reason
    (``no_handler`` or ``unknown_version``). Never acknowledged unapplied."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


# Every event passes here (common.db.raw: the transaction's connection, without the ORM).
_INBOX = (
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


class Consumer:
    def __init__(self, name: str, db: Database | None = None) -> None:
        self.name = name
        self.db = db
        self.handlers: dict[str, Handler] = {}
        self.in_flight = 0  # deliveries being applied right now (a /metrics gauge)
        self._healthy: asyncio.Event | None = None  # cleared while the database is away
        self._backoff = SATURATION_BACKOFF  # the next pause when the database has no room

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
            env = Envelope.from_json(upcast(doc))
        except ValidationError as exc:
            raise Poison(f"malformed envelope: {exc.error_count()} error(s)") from exc
        if env.event_type in self.handlers and payload_model(env.event_type, env.version) is None:
            known = current_version(env.event_type)
            raise Unhandled(
                "unknown_version",
                f"unknown event version {env.event_type} v{env.version} (this replica knows up to v{known})"
                if known
                else f"unknown event version {env.event_type} v{env.version} (no model in this replica)",
            )
        return env

    async def process(self, session: AsyncSession, doc: dict[str, Any]) -> bool:
        """Apply one event in the caller's transaction; False when it was a duplicate.

        Raises :class:`Unhandled` for a type or version this replica cannot handle."""
        env = self.parse(doc)
        handler = self.handlers.get(env.event_type)
        if handler is None:
            raise Unhandled("no_handler", f"{self.name} has no handler for {env.event_type} in this replica")
        inserted = await (await raw(session)).fetchval(_INBOX, self.name, env.event_id, env.event_type)
        if inserted is None:
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
        self.in_flight += 1
        try:
            if tracing.enabled:  # a CONSUMER span under the producer's context (common.tracing)
                with tracing.processing(doc, self.name):
                    async with self._db().transaction() as session:
                        return await self.process(session, doc)
            async with self._db().transaction() as session:
                return await self.process(session, doc)
        finally:
            self.in_flight -= 1

    # --- transient failures: pause, never burn the event's retries --------------------------

    @property
    def paused(self) -> bool:
        return self._healthy is not None and not self._healthy.is_set()

    async def is_transient(self, exc: BaseException) -> bool:
        return await is_transient(exc, self.db)

    async def deliver_patiently(self, doc: dict[str, Any]) -> bool:
        """:meth:`deliver`, retried for as long as the failure is a transient one of the
        infrastructure. While the database is away the whole consumer pauses: every other
        delivery waits for it to answer before it tries (so an outage costs no retry)."""
        if self._healthy is None:
            self._healthy = asyncio.Event()
            self._healthy.set()
        while True:
            await self._healthy.wait()
            try:
                applied = await self.deliver(doc)
            except Exception as exc:
                if not await self.is_transient(exc):
                    raise
                if self._healthy.is_set():
                    self._healthy.clear()
                    saturated = is_saturation(exc)
                    log.warning(
                        "consumer_paused",
                        consumer=self.name,
                        event_type=doc.get("event_type"),
                        saturated=saturated,
                        error=f"{type(exc).__name__}: {exc}"[:500],
                    )
                    try:
                        if saturated:
                            await asyncio.sleep(self._saturation_pause())
                        await wait_for_database(self._db())
                    finally:
                        self._healthy.set()
                    log.info("consumer_resumed", consumer=self.name)
                else:
                    await asyncio.sleep(0.05)  # a conflict (deadlock, serialization): again
            else:
                self._backoff = SATURATION_BACKOFF
                return applied

    def _saturation_pause(self) -> float:
        """The pause after "no room", with jitter (the replicas do not all come back at once)."""
        pause = self._backoff * random.uniform(0.5, 1.0)
        self._backoff = min(self._backoff * 2, SATURATION_BACKOFF_MAX)
        return pause

    # --- in-process deferral -----------------------------------------------------------------

    async def defer(
        self, doc: dict[str, Any], exc: Exception | None, first_delay: float, *, attempts: int = 1
    ) -> None:
        """Keep a failed in-process delivery durably in this consumer's database: a timer
        redelivers it with backoff, or it is parked at once if it can never succeed.
        ``attempts=0`` (a transient failure, a slow handler handed over): no retry spent."""
        poison = isinstance(exc, Poison)
        error = f"{type(exc).__name__}: {exc}"[:2000] if exc is not None else None
        async with self._db().transaction() as session:
            await schedule(
                session,
                REDELIVER_TIMER,
                f"{self.name}:{doc.get('event_id')}",
                utcnow() + timedelta(seconds=first_delay),
                {"consumer": self.name, "event": doc},
                attempts=attempts,
                state="dead" if poison else "scheduled",
                last_error=error,
            )
        outcome = "parked" if poison else "deferred"
        EVENTS_CONSUMED.labels(self.name, str(doc.get("event_type")), outcome).inc()
        level = log.warning if exc is not None and not isinstance(exc, RetryLater) else log.info
        level("event_" + outcome, consumer=self.name, event_type=doc.get("event_type"), error=error)

    async def redeliver(self, session: AsyncSession, timer: TimerRow) -> None:
        """Timer handler for :data:`REDELIVER_TIMER`."""
        doc = timer.payload["event"]
        if tracing.enabled:
            with tracing.processing(doc, self.name):
                await self.process(session, doc)
            return
        await self.process(session, doc)
