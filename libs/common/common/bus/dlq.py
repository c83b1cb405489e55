"""Dead letters: list and replay what could not be applied.

Two stores, one shape: with RabbitMQ they are the messages of ``<queue>.dlq``; in-process
(all-in-one) they are the parked redelivery timers in the service's own database (the DLQ
listing also shows any other dead timer of that service).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aio_pika

from common.bus.consumer import REDELIVER_TIMER
from common.bus.rabbitmq import RETRY_HEADER, dead_letter_queue
from common.db import Database
from common.timers import dead_timers, revive


@dataclass
class DeadLetter:
    id: str
    kind: str  # the event type, or the timer kind
    consumer: str
    error: str
    attempts: int
    failed_at: str | None
    event: dict[str, Any] | None


async def rabbit_list(url: str, queue: str, limit: int = 1000) -> list[DeadLetter]:
    """Read the DLQ without removing anything (each message is returned to the queue)."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        q = await channel.get_queue(dead_letter_queue(queue), ensure=True)
        taken = []
        items: list[DeadLetter] = []
        for _ in range(limit):
            message = await q.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
            headers = dict(message.headers or {})
            try:
                event = json.loads(message.body)
            except ValueError:
                event = None
            items.append(
                DeadLetter(
                    id=str(message.message_id),
                    kind=str(message.type),
                    consumer=str(headers.get("x-consumer", queue)),
                    error=str(headers.get("x-error", "")),
                    attempts=int(headers.get(RETRY_HEADER, 0) or 0) + 1,  # type: ignore[arg-type]
                    failed_at=str(headers.get("x-failed-at", "")) or None,
                    event=event,
                )
            )
        # Closing the channel returns every unacknowledged message to the queue, in order.
        await channel.close()
        return items
    finally:
        await connection.close()


async def rabbit_replay(
    url: str, queue: str, message_ids: set[str] | None = None, limit: int = 100000
) -> int:
    """Move dead letters back to the service's queue for another full round of tries."""
    connection = await aio_pika.connect(url, timeout=10)
    replayed = 0
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        q = await channel.get_queue(dead_letter_queue(queue), ensure=True)
        kept = []
        for _ in range(limit):
            message = await q.get(no_ack=False, fail=False)
            if message is None:
                break
            if message_ids is not None and message.message_id not in message_ids:
                kept.append(message)
                continue
            # A fresh round of tries: drop the failure headers (retry count, errors, x-death)
            # but keep the routing key the event was first published with.
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if not str(k).startswith("x-") or k == "x-original-routing-key"
            }
            headers["x-replayed"] = 1
            copy = aio_pika.Message(
                body=message.body,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message.message_id,
                type=message.type,
                correlation_id=message.correlation_id,
                timestamp=message.timestamp,
                headers=headers,
            )
            await asyncio.wait_for(
                channel.default_exchange.publish(copy, routing_key=queue, mandatory=True), 10
            )
            await message.ack()
            replayed += 1
        for message in kept:
            await message.nack(requeue=True)
        await channel.close()
        return replayed
    finally:
        await connection.close()


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


async def db_replay(db: Database, ids: list[int] | None = None) -> int:
    async with db.transaction() as session:
        return await revive(session, ids)
