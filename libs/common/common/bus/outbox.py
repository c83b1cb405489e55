"""Transactional outbox: events are rows written with the state change, published by a relay.

``emit`` writes the event in the caller's transaction (and a NOTIFY that fires on commit),
so an event exists if and only if its state change committed. Its ``sequence`` comes from
the per-aggregate counter only (nobody passes one: a consumer that treats "sequence <= seen"
as stale would drop a real event numbered by hand).

Each aggregate's rows (its chain: one source, one aggregate) are published in sequence order,
whatever the relays do. A relay takes the next batch by its chains' heads: a head is an
aggregate's unsent row with no earlier unsent row, taken in write order with ``FOR UPDATE
SKIP LOCKED`` straight off the partial index ``ix_outbox_next`` (no sort of the backlog); with
each head it takes the rows that follow it in its chain (contiguous, due; up to
``batch_rows`` divided among the chains taken). Holding the head is holding the chain: another relay skips the locked head and sees
that the later rows have an earlier unsent one, so it never publishes row N+1 while row N is
being published elsewhere, waits out its backoff, or was written by a transaction that began
later (``created_at`` is a transaction's start, so only ``sequence`` orders a chain; the
per-aggregate counter makes a chain's rows commit in sequence order). The batch is published
with its confirmations in flight together (one chain's rows one after the other; different
chains at once) and marked sent in the same transaction. A relay that dies between the
broker's confirmation and its commit leaves the row pending: it is published again and the
consumers' inbox absorbs the duplicate.

Failures: when the broker is unreachable (the transport says so) the relay backs off as a
whole (:class:`BrokerUnavailable`: the polling loop's exponential backoff), recording the
attempt on the row it tried but leaving every row due; a row the broker refused while it
was reachable backs off alone, and the later rows of its aggregate wait behind it (they are
never published ahead of it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common import tracing
from common.context import causation_id_var, correlation_id_var, request_id_var
from common.db import Database, connect, raw
from common.events import Envelope, EventPayload
from common.metrics import OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from common.timers import utcnow
from common.worker import PollingWorker

if TYPE_CHECKING:
    from common.bus.transport import Transport

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "voucher_outbox"


# The aggregate's next number and the row in one round trip: the counter (a row per aggregate,
# locked until the transaction ends, so an aggregate's events are numbered in commit order)
# feeds the insert, and the body's ``sequence`` is set from it. The transaction's first event
# also wakes the relays: its NOTIFY (delivered at commit) rides in the same statement.
_NUMBERED = (
    "WITH numbered AS ("
    " INSERT INTO aggregate_sequences (aggregate_id, seq) VALUES ($3, 1)"
    " ON CONFLICT (aggregate_id) DO UPDATE SET seq = aggregate_sequences.seq + 1 RETURNING seq) "
    "INSERT INTO outbox (id, event_type, aggregate_id, sequence, body) "
    "SELECT $1, $2, $3, seq, jsonb_set($4::text::jsonb, '{sequence}', to_jsonb(seq)) "
)
_WRITE = _NUMBERED + "FROM numbered RETURNING sequence"
_WRITE_AND_NOTIFY = (
    _NUMBERED + f"FROM numbered, (SELECT pg_notify('{NOTIFY_CHANNEL}', '')) AS woken RETURNING sequence"
)


async def emit(session: AsyncSession, payload: EventPayload, *, aggregate_id: str) -> Envelope[Any]:
    """Write ``payload`` to the outbox in the caller's transaction; return its envelope.

    Its sequence is the aggregate's next number from the counter (there is no way to pass
    one: only the counter assigns sequences). The relays are woken by one NOTIFY per
    transaction (delivered on commit), however many events it writes."""
    event_id = str(uuid.uuid4())
    envelope = Envelope.wrap(
        payload,
        aggregate_id=aggregate_id,
        correlation_id=correlation_id_var.get() or request_id_var.get(),
        causation_id=causation_id_var.get(),
        event_id=event_id,
        # The emitting request's (or job's) trace goes with the event (common.tracing).
        trace=tracing.event_created(payload.event_type, event_id, aggregate_id) if tracing.enabled else None,
    )
    connection = await raw(session)
    transaction = session.sync_session.get_transaction()
    first = session.info.get("outbox_notified") is not transaction
    sequence = int(
        await connection.fetchval(
            _WRITE_AND_NOTIFY if first else _WRITE,
            envelope.event_id,
            envelope.event_type,
            aggregate_id,
            json.dumps(envelope.to_json(), ensure_ascii=False),
        )
    )
    session.info["outbox_notified"] = transaction
    return envelope.model_copy(update={"sequence": sequence})


class BrokerUnavailable(ConnectionError):
    """The transport cannot reach its broker: the relay backs off as a whole."""


# The heads of the next batch: up to :n chains in write order, straight off ix_outbox_next (no
# sort of the backlog). A head is an unsent, due row with no earlier unsent row of its
# aggregate (ix_outbox_aggregate_pending): not a row behind one that is backing off, being
# published by another relay (locked: skipped here) or simply not yet sent. Rows of one
# transaction share created_at (now() is the transaction's start); their sequence keeps them
# in write order.
NEXT_BATCH = text(
    "SELECT o.aggregate_id, o.sequence FROM outbox o "
    "WHERE o.sent_at IS NULL AND o.available_at <= now() "
    "AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.sent_at IS NULL "
    "AND e.aggregate_id = o.aggregate_id AND e.sequence < o.sequence) "
    "ORDER BY o.created_at, o.sequence, o.id LIMIT :n FOR UPDATE OF o SKIP LOCKED"
)
# Each head's chain: the head (locked already) and the unsent, due rows that follow it, up to
# :chain of them. Nobody else takes them: they are no heads while the head is unsent.
CHAIN_ROWS = text(
    "SELECT r.id, r.body, r.attempts, r.aggregate_id, r.sequence FROM outbox r "
    "JOIN unnest(CAST(:aggregates AS text[]), CAST(:heads AS bigint[])) AS h(aggregate_id, sequence) "
    "ON r.aggregate_id = h.aggregate_id AND r.sequence >= h.sequence AND r.sequence < h.sequence + :chain "
    "WHERE r.sent_at IS NULL AND r.available_at <= now() "
    "FOR UPDATE OF r SKIP LOCKED"
)

Chain = list[tuple[str, dict[str, Any], int]]


def chains_of(heads: Sequence[Any], rows: Sequence[Any]) -> list[Chain]:
    """The batch's chains in their heads' write order, each the contiguous run of rows from
    its head in sequence order: a row after a gap (one not due, or held elsewhere) waits for a
    later round, when it is a head itself."""
    members: dict[str, list[Any]] = {}
    for row in rows:
        members.setdefault(row.aggregate_id, []).append(row)
    chains: list[Chain] = []
    for aggregate_id, head_sequence in heads:
        chain: Chain = []
        expected = head_sequence
        for row in sorted(members.get(aggregate_id, []), key=lambda r: r.sequence):
            if row.sequence != expected:
                break
            chain.append((row.id, row.body, row.attempts))
            expected += 1
        if chain:
            chains.append(chain)
    return chains


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
        in_flight: int = 100,
        batch_rows: int = 1000,
    ) -> None:
        super().__init__(name, poll_interval)
        self.db = db
        self.transport = transport
        # Chains (aggregates) per batch, and rows per batch: each chain may bring up to
        # batch_rows // (chains taken) of its rows (all of one hot aggregate's backlog at once,
        # ten of each when a hundred aggregates wait).
        self.batch_size = batch_size
        self.batch_rows = max(batch_rows, batch_size)
        # Whether the last batch was full (more may be due at once).
        self._full = False
        # Publishes whose confirmation may be awaited together (1: one at a time).
        self.in_flight = max(1, in_flight)
        self._slots = asyncio.Semaphore(self.in_flight)
        self.retry_delays = list(retry_delays) or [1.0]
        self.listen = listen
        self._listener: asyncpg.Connection | None = None

    def _broker_up(self) -> bool:
        health = getattr(self.transport, "health", None)
        if health is None:
            return True
        try:
            return bool(health().get("broker", True))
        except Exception:  # noqa: BLE001 - a transport that cannot tell is taken as up
            return True

    async def _publish_chain(self, rows: Chain, published: list[str]) -> tuple[str, int, Exception] | None:
        """One aggregate's rows, one after the other; stop at the first failure."""
        for row_id, body, attempts in rows:
            try:
                async with self._slots:
                    if tracing.enabled:
                        with tracing.sending(body):
                            await self.transport.publish(body)
                    else:
                        await self.transport.publish(body)
            except Exception as exc:  # noqa: BLE001 - the row stays pending and is retried
                return (row_id, attempts, exc)
            published.append(row_id)
        return None

    async def run_once(self) -> int:
        """Publish one batch of due rows; return how many were published.

        Raises :class:`BrokerUnavailable` (after recording the attempt) when the broker is
        unreachable, so the polling loop backs off as a whole."""
        published: list[str] = []
        failures: list[tuple[str, int, Exception]] = []
        broker_down = False
        self._slots = asyncio.Semaphore(self.in_flight)
        async with self.db.transaction() as session:
            heads = (await session.execute(NEXT_BATCH, {"n": self.batch_size})).all()
            chain_rows = max(1, self.batch_rows // max(1, len(heads)))
            rows = (
                (
                    await session.execute(
                        CHAIN_ROWS,
                        {
                            "aggregates": [h.aggregate_id for h in heads],
                            "heads": [h.sequence for h in heads],
                            "chain": chain_rows,
                        },
                    )
                ).all()
                if heads
                else []
            )
            chains = chains_of(heads, rows)
            self._full = len(heads) >= self.batch_size or any(len(c) >= chain_rows for c in chains)
            if chains:
                # The first row alone: when the broker is away this is the only attempt.
                head = chains[0]
                failure = await self._publish_chain(head[:1], published)
                if failure is not None:
                    failures.append(failure)
                    broker_down = not self._broker_up()
                else:
                    chains[0] = head[1:]
                    results = await asyncio.gather(
                        *(self._publish_chain(chain, published) for chain in chains if chain)
                    )
                    failures += [f for f in results if f is not None]
                    broker_down = bool(failures) and not self._broker_up()
            if published:
                await session.execute(
                    text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)"), {"ids": published}
                )
            for failed_id, attempts_so_far, error in failures:
                # The broker away: every row stays due (the relay backs off as a whole); a row
                # refused by a reachable broker backs off alone (its aggregate waits behind it).
                delay = (
                    0.0
                    if broker_down
                    else self.retry_delays[min(attempts_so_far, len(self.retry_delays) - 1)]
                )
                await session.execute(
                    text(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = :err, "
                        "available_at = greatest(available_at, :at) WHERE id = :id"
                    ),
                    {
                        "err": f"{type(error).__name__}: {error}"[:2000],
                        "at": utcnow() + timedelta(seconds=delay),
                        "id": failed_id,
                    },
                )
        if published:
            OUTBOX_PUBLISHED.labels(self.name).inc(len(published))
        if failures:
            OUTBOX_PUBLISH_FAILURES.labels(self.name).inc(len(failures))
            failed_id, _, error = failures[0]
            log.warning(
                "outbox_publish_failed",
                relay=self.name,
                event_id=failed_id,
                failed=len(failures),
                broker_down=broker_down,
                error=str(error),
            )
            if broker_down:
                raise BrokerUnavailable(f"broker unreachable: {type(error).__name__}: {error}") from error
        return len(published)

    async def drain(self, max_rounds: int = 100) -> int:
        """Publish until nothing due is left (tests and shutdown)."""
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once()
            total += n
            if n == 0:
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
            await self.run_once()
            return self._full
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
