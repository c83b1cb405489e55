"""Transactional outbox: events are rows written with the state change, published by a relay.

``publish`` writes the event in the caller's transaction (and a NOTIFY that fires on commit),
so an event exists if and only if its state change committed. The relay takes pending rows
with ``FOR UPDATE SKIP LOCKED`` (several relays never take the same row), publishes each
with the transport's confirmation and marks it sent in the same transaction. A relay that
dies between the broker's confirmation and its commit leaves the row pending: it is
published again and the consumers' inbox absorbs the duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from common.context import causation_id_var, correlation_id_var, request_id_var
from common.db import Database, connect
from common.events import Envelope, EventPayload
from common.metrics import OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from common.tables import AggregateSequence, OutboxRow
from common.timers import utcnow
from common.worker import PollingWorker

if TYPE_CHECKING:
    from common.bus.transport import Transport

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "voucher_outbox"


async def next_sequence(session: AsyncSession, aggregate_id: str) -> int:
    insert = pg_insert(AggregateSequence).values(aggregate_id=aggregate_id, seq=1)
    stmt = insert.on_conflict_do_update(
        index_elements=["aggregate_id"], set_={"seq": col(AggregateSequence.seq) + 1}
    ).returning(col(AggregateSequence.seq))
    return int((await session.execute(stmt)).scalar_one())


async def publish(
    session: AsyncSession,
    payload: EventPayload,
    *,
    aggregate_id: str,
    sequence: int | None = None,
) -> Envelope[Any]:
    """Write ``payload`` to the outbox in the caller's transaction; return its envelope."""
    if sequence is None:
        sequence = await next_sequence(session, aggregate_id)
    envelope = Envelope.wrap(
        payload,
        aggregate_id=aggregate_id,
        sequence=sequence,
        correlation_id=correlation_id_var.get() or request_id_var.get(),
        causation_id=causation_id_var.get(),
    )
    session.add(
        OutboxRow(
            id=envelope.event_id,
            event_type=envelope.event_type,
            aggregate_id=aggregate_id,
            sequence=sequence,
            body=envelope.to_json(),
        )
    )
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return envelope


class OutboxRelay(PollingWorker):
    kind = "outbox_relay"

    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        retry_delays: Sequence[float] = (1, 5, 30, 120, 600),
        listen: bool = True,
        name: str = "relay",
    ) -> None:
        super().__init__(name, poll_interval)
        self.db = db
        self.transport = transport
        self.batch_size = batch_size
        self.retry_delays = list(retry_delays) or [1.0]
        self.listen = listen
        self._listener: asyncpg.Connection | None = None

    async def run_once(self) -> int:
        """Publish one batch of due rows; return how many were published."""
        published: list[str] = []
        failure: tuple[str, int, Exception] | None = None
        async with self.db.transaction() as session:
            rows = (
                await session.exec(
                    text(  # type: ignore[call-overload]
                        "SELECT id, body, attempts FROM outbox WHERE sent_at IS NULL AND available_at <= now() "
                        # Rows of one transaction share created_at (now() is the transaction's
                        # start); ordering them by the random uuid id published an aggregate's
                        # events of one transaction in random order (each inversion costs its
                        # consumer a RetryLater round). Its sequence keeps them in write order.
                        "ORDER BY created_at, sequence, id LIMIT :n FOR UPDATE SKIP LOCKED"
                    ).bindparams(n=self.batch_size)
                )
            ).all()
            for row_id, body, attempts in rows:
                try:
                    await self.transport.publish(body)
                except Exception as exc:  # noqa: BLE001 - the row stays pending and is retried
                    failure = (row_id, attempts, exc)
                    break
                published.append(row_id)
            if published:
                await session.execute(
                    text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)"), {"ids": published}
                )
            if failure is not None:
                failed_id, attempts_so_far, error = failure
                delay = self.retry_delays[min(attempts_so_far, len(self.retry_delays) - 1)]
                await session.execute(
                    text(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = :err, available_at = :at "
                        "WHERE id = :id"
                    ),
                    {
                        "err": f"{type(error).__name__}: {error}"[:2000],
                        "at": utcnow() + timedelta(seconds=delay),
                        "id": failed_id,
                    },
                )
        if published:
            OUTBOX_PUBLISHED.labels(self.name).inc(len(published))
        if failure is not None:
            OUTBOX_PUBLISH_FAILURES.labels(self.name).inc()
            log.warning("outbox_publish_failed", relay=self.name, event_id=failure[0], error=str(failure[2]))
        return len(published)

    async def drain(self, max_rounds: int = 100) -> int:
        """Publish until nothing due is left (tests and shutdown)."""
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once()
            total += n
            if n < self.batch_size:
                break
        return total

    async def pending(self) -> int:
        async with self.db.session() as session:
            return int(
                (
                    await session.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
                ).scalar_one()
            )

    async def _start_listening(self) -> None:
        if not self.listen or self._listener is not None:
            return
        try:
            self._listener = await connect(self.db.url)
            await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        except Exception:  # noqa: BLE001 - polling still works without LISTEN
            log.warning("outbox_listen_unavailable", relay=self.name)
            self._listener = None

    async def tick(self) -> bool:
        await self._start_listening()
        try:
            return await self.run_once() >= self.batch_size
        except Exception:
            if self._listener is not None and self._listener.is_closed():
                self._listener = None
            raise

    async def stop(self) -> None:
        await super().stop()
        if self._listener is not None:
            try:
                await self._listener.close(timeout=2)
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
            self._listener = None
