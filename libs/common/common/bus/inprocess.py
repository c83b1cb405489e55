"""In-process transport (all-in-one mode and unit tests).

It keeps the RabbitMQ transport's promise: ``publish`` returns only after every subscribed
consumer has committed either the event's effect (with its inbox row) or a durable
redelivery timer in the consumer's own database (the handler failed, or was too slow to
wait for). So the relay marks an outbox row sent only when nothing can be lost, and a crash
before that redelivers it.

Each consumer is delivered to independently: in its own transaction, all consumers at once
(and, as the relay publishes different aggregates' rows together, several events at once).
One slow handler does not hold the publisher: after ``handoff_timeout`` its delivery is
cancelled (its transaction rolls back) and handed to the consumer's timer worker as a
redelivery due now, which spends none of the event's retries. A transient failure of the
consumer's database is no failure of the event either (no retry spent); when even the
deferral cannot be written, ``publish`` raises and the row stays pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from common.bus.consumer import Consumer
from common.bus.transport import Transport

log = structlog.get_logger(__name__)


class InProcessTransport(Transport):
    def __init__(self, retry_delays: list[float] | None = None, *, handoff_timeout: float = 10.0) -> None:
        self.retry_delays = retry_delays or [1, 5, 30, 120, 600]
        self.handoff_timeout = handoff_timeout
        self.consumers: dict[str, Consumer] = {}
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def subscribe(self, consumer: Consumer) -> None:
        self.consumers[consumer.name] = consumer

    async def _deliver_to(self, consumer: Consumer, doc: dict[str, Any]) -> None:
        task = asyncio.ensure_future(consumer.deliver(doc))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.handoff_timeout)
        except asyncio.CancelledError:  # the relay itself was stopped
            task.cancel()
            raise
        if not done:  # too slow to wait for: roll it back, hand it to the timer worker
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.warning(
                "event_handed_over",
                consumer=consumer.name,
                event_type=doc.get("event_type"),
                after_seconds=self.handoff_timeout,
            )
            await consumer.defer(doc, None, 0, attempts=0)
            return
        try:
            task.result()
        except Exception as exc:  # noqa: BLE001 - kept durably for redelivery (or raises)
            if await consumer.is_transient(exc):
                await consumer.defer(doc, exc, self.retry_delays[0], attempts=0)
            else:
                await consumer.defer(doc, exc, self.retry_delays[0])

    async def publish(self, doc: dict[str, Any]) -> None:
        if not self.started:
            raise ConnectionError("in-process bus is not running")
        event_type = doc.get("event_type")
        targets = [c for c in list(self.consumers.values()) if event_type in c.handlers]
        if not targets:
            return
        if len(targets) == 1:
            await self._deliver_to(targets[0], doc)
            return
        results = await asyncio.gather(*(self._deliver_to(c, doc) for c in targets), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def health(self) -> dict[str, bool]:
        return {"broker": self.started, **{f"consumer:{name}": self.started for name in self.consumers}}
