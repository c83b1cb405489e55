"""Dead letters: list, inspect, export, replay and discard what could not be applied; move
what nobody was bound to back to the exchange.

Two stores, one shape: with RabbitMQ they are the messages of ``<queue>.dlq``; in-process
(all-in-one) they are the parked redelivery timers in the service's own database (the DLQ
listing also shows any other dead timer of that service). Events that no queue was bound to
when they were published wait in ``voucher.events.unrouted``: once the consumer's queue
exists, ``move`` publishes them to the exchange again with their original routing key.

A replay is refused for an event older than the replay window (``BUS_REPLAY_WINDOW_DAYS``):
the consumer's inbox, which makes a second delivery harmless, is pruned after
``BUS_INBOX_RETENTION_DAYS`` (longer than the window), so an older event might be applied
twice. Such an event stays where it is, with the reason.

A discard removes dead letters for good (an event nobody should ever apply): it returns what it
removed, events included, so the operator's terminal (or an export made first) keeps a copy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from sqlalchemy import delete
from sqlmodel import col

from common.bus.consumer import REDELIVER_TIMER
from common.bus.rabbitmq import RETRY_HEADER, copy_message, dead_letter_queue, unrouted_queue
from common.db import Database
from common.timers import TimerRow, dead_timers, revive


@dataclass
class DeadLetter:
    id: str
    kind: str  # the event type, or the timer kind
    consumer: str
    error: str
    attempts: int
    failed_at: str | None
    event: dict[str, Any] | None


@asynccontextmanager
async def _open(url: str, queue: str, *, confirms: bool = False) -> AsyncIterator[tuple[Any, Any]]:
    """A channel and ``queue`` on it. Every message taken and not acknowledged goes back to
    the queue, in its place, when the channel closes: what a listing peeks at, and what a
    replay, a move or a discard did not choose."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=confirms, on_return_raises=confirms)
        yield channel, await channel.get_queue(queue, ensure=True)
        await channel.close()
    finally:
        await connection.close()


async def _take(q: Any, limit: int, message_ids: set[str] | None = None) -> AsyncIterator[Any]:
    """The queue's messages, oldest first (at most ``limit``), those of ``message_ids`` only
    when given; the others stay unacknowledged (back in the queue when the channel closes)."""
    for _ in range(limit):
        message = await q.get(no_ack=False, fail=False)
        if message is None:
            return
        if message_ids is None or message.message_id in message_ids:
            yield message


async def rabbit_list(url: str, queue: str, limit: int = 1000) -> list[DeadLetter]:
    """Read the DLQ without removing anything."""
    async with _open(url, dead_letter_queue(queue)) as (_, q):
        return [_letter(message, queue) async for message in _take(q, limit)]


@dataclass
class Refused:
    id: str
    reason: str


def too_old(event: dict[str, Any] | None, window_days: float | None) -> str | None:
    """Why this event may not be replayed (None: it may)."""
    if window_days is None or event is None:
        return None
    try:
        occurred = datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        return None
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    age = datetime.now(UTC) - occurred
    if age <= timedelta(days=window_days):
        return None
    return (
        f"refused: event {event.get('event_id')} occurred {age.days} days ago, beyond the "
        f"{window_days:g}-day replay window: the consumer's inbox may no longer remember it, "
        "so a replay could apply it twice; check the consumer's state and re-publish it "
        "deliberately if it is still needed"
    )


async def rabbit_inspect(url: str, queue: str, message_id: str, limit: int = 100000) -> DeadLetter | None:
    """One message of a queue (left in place), or None."""
    async with _open(url, queue) as (_, q):
        async for message in _take(q, limit, {message_id}):
            return _letter(message, queue)
    return None


def _letter(message: Any, queue: str) -> DeadLetter:
    headers = dict(message.headers or {})
    try:
        event = json.loads(message.body)
    except ValueError:
        event = None
    return DeadLetter(
        id=str(message.message_id),
        kind=str(message.type),
        consumer=str(headers.get("x-consumer", queue)),
        error=str(headers.get("x-error", "")),
        attempts=int(headers.get(RETRY_HEADER, 0) or 0) + 1,
        failed_at=str(headers.get("x-failed-at", "")) or None,
        event=event,
    )


async def unrouted_list(url: str, exchange: str, limit: int = 1000) -> list[DeadLetter]:
    """The events nobody was bound to when they were published (left in place)."""
    items = []
    async with _open(url, unrouted_queue(exchange)) as (_, q):
        async for message in _take(q, limit):
            letter = _letter(message, "")
            letter.consumer = ""
            letter.error = f"unrouted: no queue was bound to {message.routing_key} when it was published"
            letter.attempts = 0
            letter.failed_at = message.timestamp.isoformat() if message.timestamp else None
            items.append(letter)
    return items


async def unrouted_move(
    url: str, exchange: str, message_ids: set[str] | None = None, limit: int = 100000
) -> int:
    """Publish unrouted events to the exchange again, with their original routing key (the
    event type): to the queues bound to it now. One nobody is bound to yet comes back to
    the unrouted queue (the exchange's alternate exchange), never lost."""
    moved = 0
    async with _open(url, unrouted_queue(exchange), confirms=True) as (channel, q):
        target = await channel.get_exchange(exchange, ensure=True)
        async for message in _take(q, limit, message_ids):
            copy = copy_message(message, dict(message.headers or {}))
            routing_key = message.routing_key or str(message.type)
            await asyncio.wait_for(target.publish(copy, routing_key=routing_key, mandatory=True), 10)
            await message.ack()
            moved += 1
    return moved


async def rabbit_replay(
    url: str,
    queue: str,
    message_ids: set[str] | None = None,
    limit: int = 100000,
    *,
    window_days: float | None = None,
    refused: list[Refused] | None = None,
) -> int:
    """Move dead letters back to the service's queue for another full round of tries
    (those older than ``window_days`` stay, listed in ``refused``)."""
    replayed = 0
    async with _open(url, dead_letter_queue(queue), confirms=True) as (channel, q):
        async for message in _take(q, limit, message_ids):
            try:
                event = json.loads(message.body)
            except ValueError:
                event = None
            if (reason := too_old(event if isinstance(event, dict) else None, window_days)) is not None:
                if refused is not None:
                    refused.append(Refused(str(message.message_id), reason))
                continue
            # A fresh round of tries: drop the failure headers (retry count, errors, x-death)
            # but keep the routing key the event was first published with.
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if not str(k).startswith("x-") or k == "x-original-routing-key"
            }
            headers["x-replayed"] = 1
            await asyncio.wait_for(
                channel.default_exchange.publish(
                    copy_message(message, headers), routing_key=queue, mandatory=True
                ),
                10,
            )
            await message.ack()
            replayed += 1
    return replayed


async def db_list(db: Database) -> list[DeadLetter]:
    async with db.session() as session:
        timers = await dead_timers(session)
    items = []
    for t in timers:
        event = t.payload.get("event") if t.kind == REDELIVER_TIMER else None
        items.append(
            DeadLetter(
                id=str(t.id),
                kind=str(event.get("event_type")) if event else t.kind,
                consumer=str(t.payload.get("consumer", t.kind)),
                error=t.last_error or "",
                attempts=t.attempts,
                failed_at=t.due_at.isoformat() if t.due_at else None,
                event=event,
            )
        )
    return items


async def db_replay(
    db: Database,
    ids: list[int] | None = None,
    *,
    window_days: float | None = None,
    refused: list[Refused] | None = None,
) -> int:
    """Revive dead timers (those whose event is older than ``window_days`` stay dead)."""
    async with db.transaction() as session:
        timers = await dead_timers(session)
        chosen = [t for t in timers if ids is None or t.id in ids]
        allowed = []
        for t in chosen:
            event = t.payload.get("event") if t.kind == REDELIVER_TIMER else None
            if (reason := too_old(event, window_days)) is not None:
                if refused is not None:
                    refused.append(Refused(str(t.id), reason))
                continue
            allowed.append(int(t.id or 0))
        if not allowed:
            return 0
        return await revive(session, allowed)


async def rabbit_discard(
    url: str, queue: str, message_ids: set[str] | None, limit: int = 100000
) -> list[DeadLetter]:
    """Remove messages of ``queue`` (a DLQ or the unrouted queue): those of ``message_ids``, or
    every one with None. What was removed is returned, events included."""
    removed: list[DeadLetter] = []
    async with _open(url, queue) as (_, q):
        async for message in _take(q, limit, message_ids):
            removed.append(_letter(message, queue))
            await message.ack()
    return removed


async def db_discard(db: Database, ids: list[int] | None) -> list[DeadLetter]:
    """Delete dead timers (those of ``ids``, or every one with None); what was deleted."""
    chosen = {int(item.id): item for item in await db_list(db) if ids is None or int(item.id) in ids}
    if not chosen:
        return []
    async with db.transaction() as session:
        result = await session.execute(
            delete(TimerRow)
            .where(col(TimerRow.state) == "dead", col(TimerRow.id).in_(list(chosen)))
            .returning(col(TimerRow.id))
        )
        gone = set(result.scalars().all())
    return [item for key, item in chosen.items() if key in gone]
