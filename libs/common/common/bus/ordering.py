"""The ordering guard: is this event fresh, stale or early for its aggregate?

Delivery is at least once and in no guaranteed order. Every event carries its source service,
its aggregate id and a per-aggregate ``sequence`` assigned by the publisher's outbox counter.
Per (consumer, source, aggregate, stream) the guard keeps the sequence of the last event
applied, under a row lock held until the handler's transaction ends:

- ``stale``: its sequence is not above the last applied one: a newer fact is already
  reflected (or it is a duplicate that slipped past the inbox): acknowledge, change nothing;
- ``early``: ``contiguous=True`` and a sequence is missing in between: the consumer sees every
  event of this aggregate's stream and one has not arrived yet: retry later (then the DLQ);
- ``fresh``: apply it; its sequence is recorded in the same transaction (rolled back with
  the handler if it fails).

``stream`` separates facts of one aggregate that are ordered independently (an
organisation's suspension and its bank account, say), so a newer fact of one kind never
makes an older fact of another kind look stale.

    @consumer.on("quota.voucher_reserved")
    async def reserved(session, event):
        if not await ordered(session, consumer.name, event):
            return  # stale
        order = await lock(session, Order, event.payload.order_id)
        ...
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from common.db import raw
from common.events import Envelope
from common.timers import RetryLater


class Verdict(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    EARLY = "early"


class Early(RetryLater):
    """The event came before one it depends on: retried later, then parked with the reason."""


# The usual case in one round trip: a fresh event (the first of its aggregate's stream, or
# above the last applied one and, when ``contiguous``, right after it) is recorded and its row
# stays locked until the handler's transaction ends (ON CONFLICT DO UPDATE locks the row it
# meets, also when its WHERE does not hold). No row back: stale or early, told apart below.
_ADVANCE_IF_FRESH = (
    "INSERT INTO event_order AS e (consumer, source, aggregate_id, stream, last_sequence) "
    "SELECT $1, $2, $3, $4, $5::bigint WHERE NOT $6::boolean OR $5::bigint = 1 "
    "ON CONFLICT (consumer, source, aggregate_id, stream) DO UPDATE "
    "SET last_sequence = EXCLUDED.last_sequence, updated_at = now() "
    "WHERE e.last_sequence < EXCLUDED.last_sequence "
    "AND (NOT $6::boolean OR e.last_sequence = EXCLUDED.last_sequence - 1) "
    "RETURNING e.last_sequence"
)
_TAKE = text(
    "INSERT INTO event_order (consumer, source, aggregate_id, stream, last_sequence) "
    "VALUES (:c, :s, :a, :st, 0) ON CONFLICT DO NOTHING"
)
_LOCK = text(
    "SELECT last_sequence FROM event_order "
    "WHERE consumer = :c AND source = :s AND aggregate_id = :a AND stream = :st FOR UPDATE"
)
_ADVANCE = text(
    "UPDATE event_order SET last_sequence = :seq, updated_at = now() "
    "WHERE consumer = :c AND source = :s AND aggregate_id = :a AND stream = :st"
)


async def check(
    session: AsyncSession,
    consumer: str,
    event: Envelope[Any],
    *,
    stream: str = "",
    contiguous: bool = False,
) -> Verdict:
    """Classify ``event`` for ``consumer``; a fresh one is recorded as the last applied."""
    key = {"c": consumer, "s": event.source, "a": event.aggregate_id, "st": stream}
    fresh = await (await raw(session)).fetchval(
        _ADVANCE_IF_FRESH, consumer, event.source, event.aggregate_id, stream, event.sequence, contiguous
    )
    if fresh is not None:
        return Verdict.FRESH
    await session.execute(_TAKE, key)
    last = int((await session.execute(_LOCK, key)).scalar_one())
    if event.sequence <= last:
        return Verdict.STALE
    if contiguous and event.sequence != last + 1:
        return Verdict.EARLY
    # a fresh event the first statement did not take (another transaction recorded a newer
    # one in between and rolled back): recorded under the lock now held
    await session.execute(_ADVANCE, {**key, "seq": event.sequence})
    return Verdict.FRESH


async def ordered(
    session: AsyncSession,
    consumer: str,
    event: Envelope[Any],
    *,
    stream: str = "",
    contiguous: bool = False,
) -> bool:
    """True: apply it (recorded). False: stale, change nothing. Raises :class:`Early`."""
    verdict = await check(session, consumer, event, stream=stream, contiguous=contiguous)
    if verdict is Verdict.EARLY:
        raise Early(
            f"early: {event.event_type} #{event.sequence} of {event.source}/{event.aggregate_id} "
            f"came before an event it follows"
        )
    return verdict is Verdict.FRESH


async def last_applied(
    session: AsyncSession, consumer: str, source: str, aggregate_id: str, stream: str = ""
) -> int:
    row = await session.execute(
        text(
            "SELECT last_sequence FROM event_order "
            "WHERE consumer = :c AND source = :s AND aggregate_id = :a AND stream = :st"
        ),
        {"c": consumer, "s": source, "a": aggregate_id, "st": stream},
    )
    return int(row.scalar_one_or_none() or 0)
