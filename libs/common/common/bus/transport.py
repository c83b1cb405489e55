"""What a bus transport promises, whichever it is (RabbitMQ or in-process)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from common.bus.consumer import Consumer


class Transport(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def publish(self, doc: dict[str, Any]) -> None:
        """Hand one event (an envelope as JSON) over; return only once it is safe.

        RabbitMQ: the broker confirmed it (persisted, routed). In-process: every consumer's
        transaction (its effect, or a durable redelivery) has committed. Raises otherwise.
        """

    @abstractmethod
    async def subscribe(self, consumer: Consumer) -> None:
        """Start delivering the consumer's event types to it."""

    @abstractmethod
    def health(self) -> dict[str, bool]:
        """``{"broker": ..., "consumer:<name>": ...}`` for readiness."""
