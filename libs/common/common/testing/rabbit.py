"""A per-run RabbitMQ namespace (its own exchange and queue prefix), deleted afterwards:
tests use it through the ``rabbit`` fixture, the benchmark directly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RabbitNamespace:
    url: str
    exchange: str
    prefix: str
    transports: list[Any] = field(default_factory=list)
    # Consumers run in other processes (end-to-end tests): their queues are deleted too.
    services: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"AMQP_URL": self.url, "BUS_EXCHANGE": self.exchange, "BUS_QUEUE_PREFIX": self.prefix}

    def transport(self, **kwargs: Any) -> Any:
        from common.bus.rabbitmq import RabbitTransport

        kwargs.setdefault("exchange", self.exchange)
        kwargs.setdefault("queue_prefix", self.prefix)
        t = RabbitTransport(self.url, **kwargs)
        self.transports.append(t)
        return t

    async def cleanup(self, extra: Iterable[str] = ()) -> list[str]:
        """Delete every queue and exchange of this namespace (``extra`` too); return the
        queues asked for."""
        import aio_pika

        connection = await aio_pika.connect(self.url, timeout=10)
        try:
            from common.bus.rabbitmq import DECLARED_QUEUES

            names = {q for q in DECLARED_QUEUES if q.startswith(self.prefix)}
            for service in self.services:
                queue = self.prefix + service
                names |= {queue, f"{queue}.dlq", *(f"{queue}.retry.{i}" for i in range(10))}
            names.add(f"{self.exchange}.unrouted")
            names.update(extra)
            for name in names:
                channel = await connection.channel()
                try:
                    await channel.queue_delete(name)
                except Exception:  # noqa: BLE001
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
            channel = await connection.channel()
            for name in (self.exchange, f"{self.exchange}.unrouted"):
                try:
                    await channel.exchange_delete(name)
                except Exception:  # noqa: BLE001
                    channel = await connection.channel()
        finally:
            await connection.close()
        return sorted(names)
