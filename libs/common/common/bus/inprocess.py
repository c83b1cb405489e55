"""In-process transport (all-in-one mode and unit tests).

It keeps the RabbitMQ transport's promise: ``publish`` returns only after every subscribed
consumer has committed either the event's effect (with its inbox row) or, when the handler
failed, a durable redelivery timer in the consumer's own database. So the relay marks an
outbox row sent only when nothing can be lost, and a crash before that redelivers it.
"""

from __future__ import annotations

from typing import Any

import structlog

from common.bus.consumer import Consumer
from common.bus.transport import Transport

log = structlog.get_logger(__name__)


class InProcessTransport(Transport):
    def __init__(self, retry_delays: list[float] | None = None) -> None:
        self.retry_delays = retry_delays or [1, 5, 30, 120, 600]
        self.consumers: dict[str, Consumer] = {}
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def subscribe(self, consumer: Consumer) -> None:
        self.consumers[consumer.name] = consumer

    async def publish(self, doc: dict[str, Any]) -> None:
        if not self.started:
            raise ConnectionError("in-process bus is not running")
        event_type = doc.get("event_type")
        for consumer in list(self.consumers.values()):
            if event_type not in consumer.handlers:
                continue
            try:
                await consumer.deliver(doc)
            except Exception as exc:  # noqa: BLE001 - kept durably for redelivery (or raises)
                await consumer.defer(doc, exc, self.retry_delays[0])

    def health(self) -> dict[str, bool]:
        return {"broker": self.started, **{f"consumer:{name}": self.started for name in self.consumers}}
