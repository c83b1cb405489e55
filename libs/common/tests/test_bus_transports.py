"""The transports themselves: an outage loses nothing, readiness tells the truth, and the
RabbitMQ topology and message properties are what operators rely on.

Outages are made with a TCP proxy the test controls (:mod:`common.testing.proxy`), never by
stopping the shared servers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aiormq.exceptions import ChannelPreconditionFailed

from common.bus.inprocess import InProcessTransport
from common.bus.outbox import emit
from common.events import ProviderApproved
from common.testing.bus import CERTIFIED, Bus, MakeBus, certified
from common.testing.proxy import TcpProxy
from common.testing.rabbit import RabbitNamespace


def via(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def host_port(url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


async def _retried(bus: Bus, ids: set[str], times: int) -> bool:
    """The relay failed to publish these rows at least ``times`` times in all."""
    return sum(r["attempts"] for r in await bus.outbox() if r["id"] in ids) >= times


def _drained(bus: Bus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await bus.pending() == 0

    return check


# --- 6. an outage loses nothing ------------------------------------------------------------------


async def test_events_published_before_during_and_after_an_outage_are_all_applied(
    make_bus: MakeBus, bus_broker: RabbitNamespace | None, postgres_server: str
) -> None:
    """RabbitMQ: the broker is cut off (publisher and consumer both reach it through the
    proxy); readiness goes false, the relay keeps the events and retries with backoff, the
    robust connection comes back, the consumer resumes. In-process the transport's lifeline
    is the consumer's database: it is cut off the same way."""
    if bus_broker is not None:
        target = host_port(bus_broker.url, 5672)
    else:
        target = host_port(postgres_server, 5432)
    async with TcpProxy(*target) as proxy:
        if bus_broker is not None:
            url = via(bus_broker.url, proxy.port) + "?reconnect_interval=0.2"
            bus = await make_bus(amqp_url=url, publish_timeout=0.5)
        else:
            bus = await make_bus(consumer_url_hook=lambda u: via(u, proxy.port))
        bus.relay(start=True)  # retry delays 0.05, 0.1, 0.2 s

        def batch(tag: str) -> list[tuple[Any, str]]:
            return [(certified(f"{tag}{i}"), f"{tag}{i}") for i in range(5)]

        before = await bus.emit(*batch("before"))
        await bus.eventually(lambda: bus.all_applied(before), what="applied before the cut")
        assert all(bus.transport.health().values())

        proxy.cut()
        if bus_broker is not None:
            await bus.eventually(
                lambda: not any(bus.transport.health().values()), what="readiness false during the cut"
            )
        during = await bus.emit(*batch("during"))
        during_ids = {e.event_id for e in during}
        await bus.eventually(lambda: _retried(bus, during_ids, 3), what="the relay retries during the cut")
        assert not set(await bus.applied()) & during_ids
        assert await bus.pending() == 5
        errors = {r["last_error"] for r in await bus.outbox() if r["id"] in during_ids} - {None}
        assert errors, "each failed publication is recorded on its row"
        if bus_broker is not None:
            assert not any(bus.transport.health().values())

        accepted = proxy.accepted
        proxy.restore()
        if bus_broker is not None:
            await bus.eventually(
                lambda: all(bus.transport.health().values()), within=15, what="readiness back after restore"
            )
        after = await bus.emit(*batch("after"))
        everything = before + during + after
        await bus.eventually(lambda: bus.all_applied(everything), within=20, what="all 15 applied")
        # A delivery can be applied before the relay has marked its row sent (the mark follows
        # the confirm, and a relay backing off marks late): the outbox drains, it need not
        # have drained at the instant the last effect lands.
        await bus.eventually(_drained(bus), within=20, what="the outbox drained")

        ids = [e.event_id for e in everything]
        assert await bus.applied() == Counter(dict.fromkeys(ids, 1))  # none lost, none twice
        assert await bus.inbox() == Counter(dict.fromkeys(ids, 1))
        assert proxy.accepted > accepted, "the client reconnected through the proxy"
        assert not await bus.dead_letters()

        await bus.transport.stop()
        assert not any(bus.transport.health().values())


# --- readiness -------------------------------------------------------------------------------------


async def test_the_in_process_bus_refuses_events_when_stopped() -> None:
    transport = InProcessTransport()
    assert transport.health() == {"broker": False}
    with pytest.raises(ConnectionError):
        await transport.publish({"event_type": CERTIFIED, "event_id": "x"})


# --- RabbitMQ: topology and message properties ---------------------------------------------------


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_rabbitmq_topology_and_message_properties(bus: Bus) -> None:
    """Durable quorum queues with delayed (quorum, at-least-once) retries and a dead-letter queue; an event nobody is
    bound to is kept in the unrouted queue (confirmed, not dropped), with the properties an
    operator reads: message id = event id, type, persistence, version/aggregate/sequence."""
    assert bus.rabbit is not None
    connection = await aio_pika.connect(bus.rabbit.url, timeout=10)
    try:
        for name in (bus.queue, f"{bus.queue}.dlq"):
            channel = await connection.channel()
            # Redeclaring with the same arguments succeeds only if it is what we claim.
            await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
            await channel.close()
        for i, delay in enumerate(bus.retry_delays):
            channel = await connection.channel()
            await channel.declare_queue(
                f"{bus.queue}.retry.{i}",
                durable=True,
                # Quorum, dead-lettered back at least once (a broker restart while a retry
                # waits cannot drop it; classic TTL queues dead-letter at most once).
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": bus.queue,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            await channel.close()
        channel = await connection.channel()
        with pytest.raises(ChannelPreconditionFailed):  # and not a classic queue
            await channel.declare_queue(bus.queue, durable=True, arguments={"x-queue-type": "classic"})
    finally:
        await connection.close()

    async with bus.publisher_db.transaction() as s:
        env = await emit(s, ProviderApproved(org_id="p-9", name="柳州检测中心"), aggregate_id="p-9")
    assert await bus.relay().drain() == 1  # confirmed: not an error, not silently dropped
    assert await bus.pending() == 0

    connection = await aio_pika.connect(bus.rabbit.url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{bus.rabbit.exchange}.unrouted", ensure=True)
        message = await queue.get(no_ack=True, fail=True, timeout=5)
        assert message is not None
    finally:
        await connection.close()
    assert message.message_id == env.event_id
    assert message.type == "catalog.provider_approved"
    assert message.routing_key == "catalog.provider_approved"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.headers == {"event_version": 1, "aggregate_id": "p-9", "sequence": env.sequence}
    assert json.loads(message.body) == env.to_json()  # the envelope, as the outbox holds it
    assert bus.consumer.deliveries == Counter()
