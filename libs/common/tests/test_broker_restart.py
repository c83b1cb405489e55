"""A broker crash while a retry waits loses nothing (issue 5, item 4).

Delayed retries wait in ``<queue>.retry.<n>`` and are dead-lettered back to the queue when
their TTL ends. Classic TTL queues dead-letter at most once: a broker dying at that moment
drops the event. The retry queues are quorum queues with the ``at-least-once``
dead-letter strategy (``x-overflow: reject-publish``), so the event survives a SIGKILL of
the broker and is applied exactly once after the restart (the inbox absorbs a duplicate).

This test runs its OWN RabbitMQ node (its own name, ports and data folder, started from
the installed ``rabbitmq-server``) and kills it; the shared broker is never touched."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import text

from common.bus.rabbitmq import RabbitTransport
from common.testing.bus import Bus, MakeBus, bank_changed
from common.testing.rabbit import PrivateRabbitNode, needs_rabbitmq_server

pytestmark = needs_rabbitmq_server


async def depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)
        return int(q.declaration_result.message_count or 0)
    finally:
        await connection.close()


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_a_broker_killed_while_a_retry_waits_still_applies_the_event_exactly_once(
    make_bus: MakeBus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node is 3.10+: no probe queue (a queue deleted just before the crash slows the
    # recovery of the others on a single node).
    async def quorum(self: RabbitTransport) -> bool:
        return True

    monkeypatch.setattr(RabbitTransport, "_quorum_supported", quorum)
    node = PrivateRabbitNode(tmp_path / "rabbit")
    await node.start()
    bus: Bus | None = None
    try:
        bus = await make_bus(
            retry_delays=[3.0, 3.0, 3.0], amqp_url=node.url + "?reconnect_interval=0.5", publish_timeout=5.0
        )
        # A clean restart first: a single node's quorum queues created moments before a crash
        # may not be known to it after (its queue directory is synced lazily): a broker
        # quirk, not the point here. The queues now exist as in any running system.
        await bus.transport.stop()
        node.terminate()
        await node.start()
        assert bus.rabbit is not None
        bus.transport = RabbitTransport(
            node.url + "?reconnect_interval=0.5",
            exchange=bus.rabbit.exchange,
            queue_prefix=bus.rabbit.prefix,
            retry_delays=bus.retry_delays,
            publish_timeout=5.0,
            connect_timeout=10,
        )
        await bus.transport.start()
        await bus.transport.subscribe(bus.consumer)

        # The bank account of an organisation the ledger does not know yet: RetryLater, and
        # the event waits in the first retry queue.
        (early,) = await bus.emit((bank_changed("r1", "6222 0009"), "r1"))
        assert await bus.relay().drain() == 1
        await bus.eventually(lambda: bus.consumer.calls[early.event_id] >= 1, what="first (early) attempt")
        await bus.eventually(lambda: _waiting(node, f"{bus.queue}.retry.0"), what="waiting in retry.0")

        node.kill()  # SIGKILL while the retry waits

        # Meanwhile the organisation becomes known to the ledger.
        async with bus.observer_db.transaction() as s:
            await s.execute(text("INSERT INTO orgs (org_id, name) VALUES ('r1', '广西r1制造有限公司')"))

        await node.start()  # the same node, on its data folder
        await bus.eventually(lambda: bus.all_applied([early]), within=90, what="applied after the restart")
        assert await bus.applied() == Counter({early.event_id: 1})  # exactly once
        assert (await bus.org("r1") or {})["bank"] == "6222 0009"
        assert await bus.inbox() == Counter({early.event_id: 1})
        assert await depth(node.url, f"{bus.queue}.dlq") == 0
        for i in range(len(bus.retry_delays)):
            assert await depth(node.url, f"{bus.queue}.retry.{i}") == 0
    finally:
        if bus is not None:
            with contextlib.suppress(Exception):
                await bus.transport.stop()  # before the node goes, or it reconnects forever
        node.stop()


async def _waiting(node: PrivateRabbitNode, queue: str) -> bool:
    return await depth(node.url, queue) == 1
