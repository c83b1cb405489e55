"""What a replica cannot handle is never acknowledged unapplied (issue 5, item 1).

During a rolling upgrade a new version binds the shared queue to a new event type, or
publishes a new version of a known one; the old replicas still take their share of the
queue. They used to acknowledge and drop it. Now such an event is retried later (a replica
that can handle it takes it meanwhile), then parked with the reason ``no_handler`` /
``unknown_version``. Older versions are upcast to the current one."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from common.bus.consumer import Consumer, Unhandled
from common.bus.versions import upcast, upcaster
from common.events import Envelope, EventPayload, OrganizationSuspended, event
from common.testing.bus import Bus, MakeBus, body_of, certified

SUSPENDED = OrganizationSuspended.event_type


async def test_an_event_of_a_version_this_replica_does_not_know_is_retried_then_parked_with_the_reason(
    bus: Bus,
) -> None:
    (known,) = await bus.emit((certified("v1"), "v1"))
    newer = {**body_of(known), "version": 2}  # a newer replica's version of a known type
    await bus.deliver_raw(newer)

    (dead,) = await bus.eventually(lambda: bus.dead_letters(), what="parked after its retries")
    tries = len(bus.retry_delays) + 1
    assert dead.event_id == known.event_id
    assert dead.attempts == tries  # retried (it used to be parked at once, or dropped)
    assert dead.error_type == "Unhandled"
    assert dead.error.startswith(
        "Unhandled: unknown_version: unknown event version identity.organization_certified v2"
    )
    if bus.rabbit is not None:  # (in-process, the retries are the consumer's redelivery timer)
        assert bus.consumer.deliveries[known.event_id] == tries
    assert bus.consumer.calls[known.event_id] == 0  # never applied as something it is not
    assert await bus.inbox() == Counter()  # nor acknowledged as applied
    if dead.headers is not None:
        assert dead.headers["x-reason"] == "unknown_version"


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_a_replica_without_a_handler_retries_an_event_bound_to_its_queue_until_one_with_it_applies_it(
    make_bus: MakeBus,
) -> None:
    """The new version of the ledger binds the shared queue to suspensions; an old replica
    (no handler for them) gets one first: it must not ack it, and the new replica applies it."""
    bus = await make_bus(retry_delays=[0.2, 0.4, 0.8, 1.6, 3.2])
    assert bus.rabbit is not None
    await _bind(bus, SUSPENDED)  # what the new replica's start declares
    (suspended,) = await bus.emit((OrganizationSuspended(org_id="n1", reason="年检未通过"), "n1"))
    assert await bus.relay().drain() == 1
    await bus.eventually(lambda: bus.consumer.deliveries[suspended.event_id] >= 1, what="old replica saw it")
    assert await bus.inbox() == Counter()

    # The new replica: same queue, same database, a handler for the new type.
    applied: list[str] = []
    new = Consumer("ledger", bus.consumer_db)

    @new.on(SUSPENDED)
    async def on_suspended(session: AsyncSession, env: Envelope[Any]) -> None:
        applied.append(env.event_id)

    transport = await bus.publisher_transport()
    await transport.subscribe(new)
    await bus.eventually(lambda: applied, within=15, what="the new replica applied it")
    assert applied == [suspended.event_id]
    assert await bus.inbox() == Counter({suspended.event_id: 1})
    assert not await bus.dead_letters()


@pytest.mark.parametrize("transport_kind", ["rabbitmq"])
async def test_an_event_no_replica_can_handle_is_parked_with_the_reason_no_handler(bus: Bus) -> None:
    await _bind(bus, SUSPENDED)
    (suspended,) = await bus.emit((OrganizationSuspended(org_id="n2", reason="注销"), "n2"))
    assert await bus.relay().drain() == 1
    (dead,) = await bus.eventually(lambda: bus.dead_letters(), what="parked")
    assert dead.event_id == suspended.event_id
    assert dead.attempts == len(bus.retry_delays) + 1
    assert dead.error == f"Unhandled: no_handler: ledger has no handler for {SUSPENDED} in this replica"
    assert dead.headers is not None and dead.headers["x-reason"] == "no_handler"
    assert await bus.inbox() == Counter()


async def _bind(bus: Bus, event_type: str) -> None:
    import aio_pika

    assert bus.rabbit is not None
    connection = await aio_pika.connect(bus.rabbit.url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(bus.queue, ensure=True)
        await queue.bind(bus.rabbit.exchange, routing_key=event_type)
    finally:
        await connection.close()


# --- older versions are upcast ---------------------------------------------------------------


@event("ledger.test_renamed", version=1)
class RenamedV1(EventPayload):
    org_id: str
    title: str


@event("ledger.test_renamed", version=2)
class RenamedV2(EventPayload):
    org_id: str
    name: str
    reason: str


@upcaster("ledger.test_renamed", 1)
def _renamed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    return {"org_id": payload["org_id"], "name": payload.pop("title"), "reason": "（v1 无原因）"}


def test_an_older_version_is_upcast_to_the_current_one_before_its_handler_sees_it() -> None:
    consumer = Consumer("ledger")

    @consumer.on("ledger.test_renamed")
    async def renamed(*_: Any) -> None: ...

    old = body_of(Envelope.wrap(RenamedV1(org_id="o1", title="桂林机械"), aggregate_id="o1"))
    env = consumer.parse(old)
    assert env.version == 2
    assert env.payload == RenamedV2(org_id="o1", name="桂林机械", reason="（v1 无原因）")
    assert old["version"] == 1 and old["payload"] == {"org_id": "o1", "title": "桂林机械"}  # untouched
    assert (
        upcast(body_of(Envelope.wrap(RenamedV2(org_id="o", name="n", reason="r"), aggregate_id="o")))[
            "version"
        ]
        == 2
    )
    with pytest.raises(Unhandled, match="unknown_version"):
        consumer.parse({**old, "version": 3})
