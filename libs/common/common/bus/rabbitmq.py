"""RabbitMQ transport (aio-pika).

Topology, all durable. Every service declares at start (idempotent) every consuming
service's queue and bindings from the registry's table (:func:`common.registry.topology`),
so an event published before its consumer first started waits in that consumer's queue
instead of being lost; a service declares its own retry queues and DLQ when it subscribes
(deploy/rabbitmq/definitions.json, imported at boot, holds all of it):
- ``voucher.events``: the topic exchange every service publishes to, routing key = event
  type; messages nobody is bound to go to its alternate exchange ``voucher.events.unrouted``
  (kept in the queue of that name; ``voucher-dlq list|inspect|move --unrouted``), never
  silently dropped. That queue is bounded (:data:`UNROUTED_MAX_LENGTH`, dropping its oldest
  message, ``drop-head``) and watched (``voucher_bus_unrouted_messages``): an event type
  with no consumer at all would otherwise fill it for ever;
- ``<service>``: one queue per consuming service (quorum type where the broker supports it),
  bound to the event types it consumes;
- ``<service>.retry.<n>``: one quorum queue per retry delay; a failed event waits there
  (message TTL) and is dead-lettered back to ``<service>`` with the ``at-least-once``
  dead-letter strategy (``x-overflow: reject-publish``): a broker restart while a retry
  waits cannot drop it (classic TTL queues dead-letter at most once);
- ``<service>.dlq``: where an event lands after its last retry (or at once when it can never
  be applied), with the error in its headers. ``voucher-dlq`` lists and replays it.

Publishing uses publisher confirms and ``on_return_raises``, is bounded by a timeout and
sets ``message_id`` = ``event_id``; several publishes may have their confirms in flight
together. A message is acknowledged only after the consumer's transaction committed, or
after it was safely moved to a retry queue or the DLQ. A transient failure of the
consumer's database pauses the consumer instead (``Consumer.deliver_patiently``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from common.bus.consumer import Consumer, Unhandled
from common.bus.transport import Transport
from common.metrics import EVENTS_CONSUMED
from common.timers import Poison, RetryLater

if TYPE_CHECKING:
    from common.registry import Topology

log = structlog.get_logger(__name__)

RETRY_HEADER = "x-retry-count"
TRACE_HEADERS = ("traceparent", "tracestate")

# Every queue name this process declared (tests delete their own afterwards).
DECLARED_QUEUES: set[str] = set()


def retry_queue(queue: str, index: int) -> str:
    return f"{queue}.retry.{index}"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dlq"


def unrouted_queue(exchange: str) -> str:
    return f"{exchange}.unrouted"


# The unrouted queue keeps the newest events nobody consumes, for an operator to look at; it
# is no store of record (an event a service needs is bound to its queue). Its oldest message
# is dropped when it is full (drop-head): ``reject-publish`` would nack the publisher instead,
# and the relay would then retry that row for ever and hold back the later events of its
# aggregate (an order's ``service_completed`` blocking its ``order_completed``).
UNROUTED_MAX_LENGTH = 10_000


def unrouted_queue_arguments(max_length: int = UNROUTED_MAX_LENGTH) -> dict[str, Any]:
    return {"x-max-length": max_length, "x-overflow": "drop-head"}


def retry_queue_arguments(queue: str, delay: float, *, quorum: bool = True) -> dict[str, Any]:
    """A retry queue: messages wait ``delay`` there, then go back to ``queue``. Quorum with
    at-least-once dead-lettering (RabbitMQ 3.10+), else (an older broker) a classic one."""
    arguments: dict[str, Any] = {
        "x-message-ttl": max(1, int(delay * 1000)),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }
    if quorum:
        arguments = {
            "x-queue-type": "quorum",
            **arguments,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    return arguments


def _message(
    doc: dict[str, Any], body: bytes | None = None, headers: dict[str, Any] | None = None
) -> aio_pika.Message:
    base_headers: dict[str, Any] = {
        "event_version": int(doc.get("version", 1)),
        "aggregate_id": str(doc.get("aggregate_id", "")),
        "sequence": int(doc.get("sequence", 0)),
    }
    # The producer's W3C context (common.tracing), also for tools that read AMQP headers.
    trace = doc.get("trace")
    if isinstance(trace, dict):
        base_headers.update({k: v for k, v in trace.items() if k in TRACE_HEADERS and isinstance(v, str)})
    return aio_pika.Message(
        body=body
        if body is not None
        else json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(doc.get("event_id")),
        type=str(doc.get("event_type")),
        correlation_id=doc.get("correlation_id") or None,
        timestamp=datetime.now(UTC),
        headers={**base_headers, **(headers or {})},
    )


def copy_message(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """A message taken from a queue, to publish again (a retry, the DLQ, a replay, a move)
    with ``headers``: the same body, id, type and timestamps, persistent."""
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        type=message.type,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        headers=headers,
    )


class RabbitTransport(Transport):
    def __init__(
        self,
        url: str,
        *,
        exchange: str = "voucher.events",
        queue_prefix: str = "",
        retry_delays: list[float] | None = None,
        publish_timeout: float = 5.0,
        prefetch: int = 16,
        connection_name: str = "voucher",
        connect_timeout: float = 60.0,
        topology: Topology | None = None,
        unrouted_max_length: int = UNROUTED_MAX_LENGTH,
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.queue_prefix = queue_prefix
        self.retry_delays = retry_delays if retry_delays is not None else [1, 5, 30, 120, 600]
        self.publish_timeout = publish_timeout
        self.prefetch = prefetch
        self.connection_name = connection_name
        self.connect_timeout = connect_timeout
        self.unrouted_max_length = unrouted_max_length
        self.connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: dict[str, tuple[AbstractChannel, AbstractQueue, Consumer]] = {}
        self._quorum: bool | None = None
        # The registry's topology: every consuming service's queues, declared at start.
        self.topology = topology
        self._declared: set[str] = set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((OSError, aio_pika.exceptions.AMQPConnectionError)),
            wait=wait_exponential(multiplier=0.2, max=3),
            stop=stop_after_delay(self.connect_timeout),
            reraise=True,
        ):
            with attempt:
                self.connection = await aio_pika.connect_robust(
                    self.url, timeout=10, client_properties={"connection_name": self.connection_name}
                )
        assert self.connection is not None
        self._publish_channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._declare_exchanges(self._publish_channel)
        if self.topology is not None:
            await self.declare_topology(self.topology)

    async def stop(self) -> None:
        for channel, _queue, _consumer in list(self._consumers.values()):
            try:
                await channel.close()
            except Exception:  # noqa: BLE001
                pass
        self._consumers.clear()
        self._declared.clear()
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def _declare_exchanges(self, channel: AbstractChannel) -> AbstractExchange:
        unrouted = unrouted_queue(self.exchange_name)
        ae = await channel.declare_exchange(unrouted, aio_pika.ExchangeType.FANOUT, durable=True)
        q = await channel.declare_queue(
            unrouted, durable=True, arguments=await self._unrouted_arguments(unrouted)
        )
        DECLARED_QUEUES.add(unrouted)
        await q.bind(ae, routing_key="")
        return await channel.declare_exchange(
            self.exchange_name,
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": unrouted},
        )

    async def _unrouted_arguments(self, name: str) -> dict[str, Any]:
        """The unrouted queue's arguments: bounded, unless the broker already has that queue
        unbounded (tried on a channel of its own, since a refused declaration closes it).

        RabbitMQ never changes a queue's arguments: a broker whose queue was made before the
        bound refuses the bounded declaration (PRECONDITION_FAILED). The service then starts
        on that queue as it is and says so; deploy/rabbitmq's definitions hold a policy that
        bounds such a queue at the broker's next boot, and deploy/README.md says how to bound
        it at once (``rabbitmqctl set_policy``). The declaration itself is made on the robust
        publishing channel, which declares it again after a reconnection."""
        assert self.connection is not None
        bounded = unrouted_queue_arguments(self.unrouted_max_length)
        probe = await self.connection.channel()
        try:
            await probe.declare_queue(name, durable=True, arguments=bounded)
            return bounded
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            log.warning(
                "unrouted_queue_unbounded",
                queue=name,
                error=str(exc),
                remedy="apply the voucher-unrouted policy (deploy/README.md, RabbitMQ)",
            )
            return {}
        finally:
            if not probe.is_closed:
                await probe.close()

    async def _quorum_supported(self) -> bool:
        """Quorum queues need RabbitMQ 3.8+ (3.10+ for message TTL); probe once."""
        if self._quorum is None:
            assert self.connection is not None
            # One probe queue per process: services starting together on one broker would
            # otherwise declare and delete the same queue under each other, and one that saw
            # its probe fail would declare classic queues the others made quorum
            # (PRECONDITION_FAILED x-queue-type at start).
            probe = f"{self.queue_prefix}voucher.quorum-probe.{uuid.uuid4().hex[:12]}"
            channel = await self.connection.channel()
            try:
                q = await channel.declare_queue(probe, durable=True, arguments={"x-queue-type": "quorum"})
                await q.delete(if_unused=False, if_empty=False)
                self._quorum = True
            except Exception:  # noqa: BLE001 - an older broker: classic durable queues
                self._quorum = False
            finally:
                if not channel.is_closed:
                    await channel.close()
        return self._quorum

    async def declare_consumer_queues(self, channel: AbstractChannel, queue_name: str) -> AbstractQueue:
        quorum_ok = await self._quorum_supported()
        quorum: dict[str, Any] = {"x-queue-type": "quorum"} if quorum_ok else {}
        DECLARED_QUEUES.update(
            [
                queue_name,
                dead_letter_queue(queue_name),
                *(retry_queue(queue_name, i) for i in range(len(self.retry_delays))),
            ]
        )
        await channel.declare_queue(dead_letter_queue(queue_name), durable=True, arguments=quorum)
        for i, delay in enumerate(self.retry_delays):
            await channel.declare_queue(
                retry_queue(queue_name, i),
                durable=True,
                arguments=retry_queue_arguments(queue_name, delay, quorum=quorum_ok),
            )
        queue = await channel.declare_queue(queue_name, durable=True, arguments=quorum)
        self._declared.add(queue_name)
        return queue

    async def declare_topology(self, topology: Topology) -> None:
        """Every consuming service's queue and bindings (idempotent), so an event published
        before its consumer first started waits in that consumer's queue.

        The retry queues and the DLQ of a queue are declared by its own service when it
        subscribes (only its consumer ever uses them): declaring them from every service
        multiplied the quorum queues a shared broker keeps open (each holds files) for no
        event's sake. deploy/rabbitmq/definitions.json still creates the whole of it.

        A service's own broker user (deploy/rabbitmq/permissions.json) may not declare or bind
        another service's queue: there the broker imported the topology at boot, so a refused
        declaration is fine when the queue is there (a passive declaration needs no
        permission); a queue neither declared nor there is logged, since events for it wait
        in the unrouted queue until its service starts (``voucher-dlq move --unrouted``)."""
        assert self.connection is not None
        quorum: dict[str, Any] = {"x-queue-type": "quorum"} if await self._quorum_supported() else {}
        for service, event_types in sorted(topology.bindings.items()):
            name = f"{self.queue_prefix}{service}"
            channel = await self.connection.channel()
            try:
                exchange = await channel.get_exchange(self.exchange_name, ensure=False)
                queue = await channel.declare_queue(name, durable=True, arguments=quorum)
                for event_type in event_types:
                    await queue.bind(exchange, routing_key=event_type)
                DECLARED_QUEUES.add(name)
            except aiormq.exceptions.ChannelAccessRefused:
                await self._held_by_the_broker(name)
            finally:
                if not channel.is_closed:
                    await channel.close()

    async def _held_by_the_broker(self, name: str) -> None:
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
            DECLARED_QUEUES.add(name)
            log.debug("queue_held_by_the_broker", queue=name)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            log.warning(
                "queue_missing",
                queue=name,
                remedy="import deploy/rabbitmq/definitions.json into the broker (deploy/README.md, RabbitMQ)",
            )
        finally:
            if not channel.is_closed:
                await channel.close()

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, doc: dict[str, Any]) -> None:
        if self._exchange is None:
            raise ConnectionError("RabbitMQ transport is not started")
        message = _message(doc)
        # asyncio.timeout, not wait_for: no task per publish (the relay has many in flight).
        async with asyncio.timeout(self.publish_timeout):
            await self._exchange.publish(message, routing_key=str(doc["event_type"]), mandatory=True)

    async def _publish_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        assert self._publish_channel is not None
        await asyncio.wait_for(
            self._publish_channel.default_exchange.publish(message, routing_key=queue, mandatory=True),
            timeout=self.publish_timeout,
        )

    # --- consuming ---------------------------------------------------------------------------

    async def subscribe(self, consumer: Consumer) -> None:
        assert self.connection is not None and self._exchange is not None
        queue_name = f"{self.queue_prefix}{consumer.name}"
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.get_exchange(self.exchange_name, ensure=False)
        queue = await self.declare_consumer_queues(channel, queue_name)
        for event_type in consumer.event_types:
            await queue.bind(exchange, routing_key=event_type)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(consumer, queue_name, message)

        await queue.consume(on_message)
        # Keep references: a robust connection restores only the queues it still knows.
        self._consumers[consumer.name] = (channel, queue, consumer)

    async def _handle(self, consumer: Consumer, queue_name: str, message: AbstractIncomingMessage) -> None:
        try:
            try:
                doc = json.loads(message.body)
                if not isinstance(doc, dict):
                    raise ValueError("an event must be a JSON object")
            except ValueError as exc:
                raise Poison(f"unreadable message: {exc}") from exc
            await consumer.deliver_patiently(doc)
        except Exception as exc:  # noqa: BLE001 - retried or parked below
            try:
                await self._retry_or_park(consumer, queue_name, message, exc)
            except Exception:
                log.exception("event_requeue", consumer=consumer.name, message_id=message.message_id)
                await self._safe_nack(message)
                return
        await message.ack()

    async def _retry_or_park(
        self, consumer: Consumer, queue_name: str, message: AbstractIncomingMessage, exc: Exception
    ) -> None:
        headers = dict(message.headers or {})
        retries = int(headers.get(RETRY_HEADER, 0) or 0)  # type: ignore[arg-type]
        error = f"{type(exc).__name__}: {exc}"[:2000]
        event_type = message.type or "unknown"
        # A retried message comes back from its retry queue routed by the queue's name: keep
        # the routing key it was first published with (else the DLQ shows the queue name).
        original_key = str(headers.get("x-original-routing-key") or message.routing_key or event_type)
        if not isinstance(exc, Poison) and retries < len(self.retry_delays):
            headers.update(
                {RETRY_HEADER: retries + 1, "x-last-error": error, "x-original-routing-key": original_key}
            )
            if isinstance(exc, Unhandled):
                headers["x-reason"] = exc.reason
            await self._publish_to_queue(retry_queue(queue_name, retries), copy_message(message, headers))
            EVENTS_CONSUMED.labels(consumer.name, event_type, "retried").inc()
            level = log.info if isinstance(exc, RetryLater) else log.warning
            level(
                "event_retry", consumer=consumer.name, event_type=event_type, retries=retries + 1, error=error
            )
            return
        headers.update(
            {
                RETRY_HEADER: retries,
                "x-error": error,
                "x-error-type": type(exc).__name__,
                "x-failed-at": datetime.now(UTC).isoformat(),
                "x-original-routing-key": original_key,
                "x-consumer": consumer.name,
                "x-reason": exc.reason if isinstance(exc, Unhandled) else type(exc).__name__,
            }
        )
        await self._publish_to_queue(dead_letter_queue(queue_name), copy_message(message, headers))
        EVENTS_CONSUMED.labels(consumer.name, event_type, "parked").inc()
        log.error("event_parked", consumer=consumer.name, event_type=event_type, retries=retries, error=error)

    @staticmethod
    async def _safe_nack(message: AbstractIncomingMessage) -> None:
        try:
            await message.nack(requeue=True)
        except Exception:  # noqa: BLE001 - the channel is gone; the broker redelivers anyway
            pass

    async def queue_depths(self, names: list[str]) -> dict[str, int]:
        """Ready messages per queue (passive declarations; a missing queue is left out)."""
        assert self.connection is not None
        depths: dict[str, int] = {}
        channel = await self.connection.channel()
        try:
            for name in names:
                try:
                    q = await channel.declare_queue(name, passive=True)
                except Exception:  # noqa: BLE001 - not declared (a passive miss closes the channel)
                    channel = await self.connection.channel()
                    continue
                depths[name] = int(q.declaration_result.message_count or 0)
        finally:
            if not channel.is_closed:
                await channel.close()
        return depths

    # --- health ------------------------------------------------------------------------------

    def health(self) -> dict[str, bool]:
        # A robust connection is not "closed" while it reconnects (``is_closed`` turns true
        # only after ``close()``), so readiness stayed true through a broker outage; its
        # ``connected`` event is cleared when the link drops and set again once it is back.
        connection = self.connection
        broker = connection is not None and not connection.is_closed and connection.connected.is_set()
        status = {"broker": broker}
        for name, (channel, _queue, _consumer) in self._consumers.items():
            status[f"consumer:{name}"] = broker and not channel.is_closed
        return status
