"""Events published before their consumer's queue exists are not lost (issue 5, item 2).

Every service declares the registry's whole topology at start, so the first event a
service publishes waits in the queue of each consumer, even one that never started yet.
What still reaches ``voucher.events.unrouted`` (no consumer at all, then) is listed,
inspected and moved back to the exchange by ``voucher-dlq``."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest
import pytest_asyncio

from common import registry
from common.bus import cli
from common.bus.outbox import OutboxRelay, emit
from common.bus.rabbitmq import RabbitTransport
from common.db import Database
from common.registry import Topology
from common.testing.bus import CERTIFIED, Ledger, certified, make_schema, wait_until
from common.testing.rabbit import RabbitNamespace

pytestmark = pytest.mark.broker


@dataclass
class World:
    rabbit: RabbitNamespace
    db: Database

    async def depth(self, queue: str) -> int:
        connection = await aio_pika.connect(self.rabbit.url, timeout=10)
        try:
            channel = await connection.channel()
            q = await channel.declare_queue(queue, passive=True)
            return int(q.declaration_result.message_count or 0)
        finally:
            await connection.close()

    async def emit(self, transport: RabbitTransport, org: str) -> str:
        async with self.db.transaction() as s:
            env = await emit(s, certified(org), aggregate_id=org)
        assert await OutboxRelay(self.db, transport, listen=False).drain() == 1
        return env.event_id

    async def applied(self) -> Counter[str]:
        from sqlalchemy import text

        async with self.db.session() as s:
            return Counter(r[0] for r in await s.execute(text("SELECT event_id FROM applied")))


@pytest_asyncio.fixture
async def world(rabbit: RabbitNamespace, fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[World]:
    db = Database(await fresh_db("topo"), pool_size=4)
    await make_schema(db)
    yield World(rabbit, db)
    await db.dispose()


async def test_an_event_published_before_its_consumer_ever_started_waits_in_its_queue(world: World) -> None:
    rabbit = world.rabbit
    # The registry's topology, and the test's own consumer (the ledger) beside it.
    whole = registry.topology(rabbit.exchange)
    topology = Topology(rabbit.exchange, {**whole.bindings, "ledger": (CERTIFIED,)})
    publisher = rabbit.transport(retry_delays=[0.05], topology=topology)
    await publisher.start()  # the publishing service starts first: nobody consumes yet

    event_id = await world.emit(publisher, "early-bird")

    # Waiting in every consumer's queue, the registry's (quota, catalog, ...) and the ledger's.
    for service in topology.consumers_of(CERTIFIED):
        assert await world.depth(rabbit.prefix + service) == 1, service
    assert await world.depth(f"{rabbit.exchange}.unrouted") == 0
    assert set(whole.consumers_of(CERTIFIED)) >= {"quota", "catalog", "orders", "contracts", "payments"}

    # The ledger's service starts later and applies it.
    consumer_transport = rabbit.transport(retry_delays=[0.05])
    await consumer_transport.start()
    ledger = Ledger(world.db)
    await consumer_transport.subscribe(ledger)
    await wait_until(lambda: world.applied(), what="applied once its consumer started")
    assert await world.applied() == Counter({event_id: 1})


async def test_the_topology_is_declared_idempotently_by_every_service(world: World) -> None:
    rabbit = world.rabbit
    topology = registry.topology(rabbit.exchange)
    first = rabbit.transport(topology=topology)
    second = rabbit.transport(topology=topology)
    await first.start()
    await second.start()  # the same declarations again: accepted, nothing lost
    event_id = await world.emit(first, "twice")
    assert await world.depth(rabbit.prefix + "quota") == 1
    assert event_id


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, list(argv)) == status
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


async def test_unrouted_events_are_listed_inspected_and_moved_back_to_the_exchange(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rabbit = world.rabbit
    monkeypatch.setenv("AMQP_URL", rabbit.url)
    monkeypatch.setenv("BUS_EXCHANGE", rabbit.exchange)
    monkeypatch.setenv("BUS_QUEUE_PREFIX", rabbit.prefix)
    publisher = rabbit.transport(retry_delays=[0.05])  # no topology: nobody is bound
    await publisher.start()
    lost = await world.emit(publisher, "nobody-home")
    other = await world.emit(publisher, "second")

    listed = await run_cli(capsys, "list", "--unrouted")
    assert [(i["id"], i["kind"]) for i in listed] == [(lost, CERTIFIED), (other, CERTIFIED)]
    assert listed[0]["error"] == f"unrouted: no queue was bound to {CERTIFIED} when it was published"
    (shown,) = await run_cli(capsys, "inspect", "--unrouted", "--id", lost)
    assert shown["event"]["event_id"] == lost and shown["event"]["payload"]["org_id"] == "nobody-home"
    assert len(await run_cli(capsys, "list", "--unrouted")) == 2  # listing and inspecting keep them

    # The consumer's queue exists now; the operator moves one event back, then the rest.
    consumer_transport = rabbit.transport(retry_delays=[0.05])
    await consumer_transport.start()
    await consumer_transport.subscribe(Ledger(world.db))
    assert await run_cli(capsys, "move", "--unrouted", "--id", lost) == [{"moved": 1}]
    await wait_until(lambda: _has(world, lost), what="the moved event applied")
    assert [i["id"] for i in await run_cli(capsys, "list", "--unrouted")] == [other]
    assert await run_cli(capsys, "move", "--unrouted") == [{"moved": 1}]
    await wait_until(lambda: _has(world, other), what="the second one applied")
    assert await world.applied() == Counter({lost: 1, other: 1})
    assert await run_cli(capsys, "list", "--unrouted") == []


async def _has(world: World, event_id: str) -> bool:
    return (await world.applied())[event_id] == 1


# --- the unrouted queue is bounded and watched (issue 12, section 6) ------------------------------


async def _unrouted_ids(world: World) -> list[str]:
    connection = await aio_pika.connect(world.rabbit.url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{world.rabbit.exchange}.unrouted", ensure=True)
        ids = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            ids.append(str(message.message_id))
        await channel.close()  # returns every peeked message
        return ids
    finally:
        await connection.close()


async def test_the_unrouted_queue_keeps_the_newest_events_up_to_its_limit_and_never_refuses_one(
    world: World,
) -> None:
    """An event type nobody consumes leaves a message per event: the queue keeps the newest
    (drop-head) and the publisher is never refused (a refused row would hold back its
    aggregate's later events in the relay)."""
    publisher = world.rabbit.transport(retry_delays=[0.05], unrouted_max_length=3)
    await publisher.start()
    ids = [await world.emit(publisher, f"nobody-{i}") for i in range(5)]  # each confirmed
    assert await world.depth(f"{world.rabbit.exchange}.unrouted") == 3
    assert await _unrouted_ids(world) == ids[2:]


async def test_a_service_starts_on_an_unrouted_queue_made_before_it_was_bounded(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """RabbitMQ refuses to redeclare a queue with other arguments (PRECONDITION_FAILED): a
    broker whose unrouted queue predates the bound must not stop the services from starting.
    They use it as it is and say so (the deployment's policy bounds it: deploy/README.md)."""
    rabbit = world.rabbit
    connection = await aio_pika.connect(rabbit.url, timeout=10)
    try:
        channel = await connection.channel()
        await channel.declare_queue(f"{rabbit.exchange}.unrouted", durable=True)  # as before
    finally:
        await connection.close()
    publisher = rabbit.transport(retry_delays=[0.05])  # no topology: nobody is bound
    await publisher.start()
    assert publisher.health()["broker"]
    lost = await world.emit(publisher, "old-broker")
    assert await _unrouted_ids(world) == [lost]  # still kept, not dropped


async def test_metrics_show_how_many_events_wait_unrouted(
    world: World, fresh_db: Callable[[str], Awaitable[str]]
) -> None:
    from typing import ClassVar

    import httpx

    from common.app import ServiceRuntime, create_service_app
    from common.settings import ServiceSettings

    rabbit = world.rabbit

    class Settings(ServiceSettings):
        service_name: ClassVar[str] = "watcher"

    settings = Settings(
        environment="development",
        database_url=world.db.url,
        amqp_url=rabbit.url,
        bus_exchange=rabbit.exchange,
        bus_queue_prefix=rabbit.prefix,
        log_json=False,
    )
    runtime = ServiceRuntime(settings, migrations_dir=None)
    app = create_service_app(runtime, title="watcher")
    await runtime.prepare()
    try:
        rabbit.transports.append(runtime.transport)
        publisher = rabbit.transport(retry_delays=[0.05])
        await publisher.start()
        for i in range(2):  # a type nobody consumes (the registry's topology is declared)
            await publisher.publish({"event_id": f"nobody-{i}", "event_type": "test.nobody_listens"})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body = (await client.get("/metrics")).text
        sample = f'voucher_bus_unrouted_messages{{queue="{rabbit.exchange}.unrouted"}} 2.0'
        assert sample in body.splitlines(), [line for line in body.splitlines() if "unrouted" in line]
    finally:
        await runtime.stop()
