"""The events identity consumes, delivered over RabbitMQ as another service would publish them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text

from common.events import Envelope, ProviderApproved
from common.testing.api_client import ApiDriver
from common.testing.rabbit import RabbitNamespace

pytestmark = pytest.mark.broker

EVENT = "catalog.provider_approved"


async def publish(rabbit: RabbitNamespace, doc: dict[str, Any]) -> None:
    """What catalog's outbox relay does: persistent, message_id = event_id, routing key = type."""
    connection = await aio_pika.connect(rabbit.url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(rabbit.exchange, ensure=True)
        await exchange.publish(
            aio_pika.Message(
                body=json.dumps(doc, ensure_ascii=False).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=doc["event_id"],
                type=doc["event_type"],
            ),
            routing_key=doc["event_type"],
        )
    finally:
        await connection.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def consumed(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "voucher_events_consumed_total", {"consumer": "identity", "event_type": EVENT, "outcome": outcome}
    )
    return value or 0.0


async def test_provider_approved_adds_the_provider_capability_once(
    client: httpx.AsyncClient, api: ApiDriver, rabbit: RabbitNamespace, identity_app: FastAPI
) -> None:
    owner = await api.register(enterprise_name="广西示范科技服务有限公司")
    org_id = (await client.get("/api/v1/me", headers=owner.headers)).json()["organization"]["id"]
    # As catalog's outbox numbers it: the first event of this organisation from catalog.
    doc = Envelope.wrap(
        ProviderApproved(org_id=org_id, name="广西示范科技服务有限公司"), aggregate_id=org_id, sequence=1
    ).to_json()
    duplicates_before = consumed("duplicate")

    await publish(rabbit, doc)

    async def is_provider() -> bool:
        me = (await client.get("/api/v1/me", headers=owner.headers)).json()
        return "provider" in me["organization"]["capabilities"]

    await eventually(is_provider)
    # The next access token carries it too.
    refreshed = await api.refresh(owner)
    assert "provider" in refreshed.body["organization"]["capabilities"]

    # The same event again (a redelivery) is recognised by its id and applied once.
    await publish(rabbit, doc)

    async def duplicate_seen() -> bool:
        return consumed("duplicate") > duplicates_before

    await eventually(duplicate_seen)
    async with identity_app.state.db.session() as s:
        rows = (
            await s.execute(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": doc["event_id"]})
        ).scalar_one()
    assert rows == 1
    assert (await client.get("/api/v1/me", headers=owner.headers)).json()["organization"]["capabilities"] == [
        "provider"
    ]


async def test_an_event_for_an_unknown_organisation_ends_in_the_dead_letter_queue(
    client: httpx.AsyncClient, rabbit: RabbitNamespace
) -> None:
    unknown = str(uuid.uuid4())
    doc = Envelope.wrap(
        ProviderApproved(org_id=unknown, name="不存在的机构"), aggregate_id=unknown, sequence=1
    ).to_json()
    await publish(rabbit, doc)

    connection = await aio_pika.connect(rabbit.url, timeout=10)
    try:
        channel = await connection.channel()
        dlq = await channel.get_queue(f"{rabbit.prefix}identity.dlq", ensure=True)
        message = None
        deadline = asyncio.get_running_loop().time() + 15
        while message is None and asyncio.get_running_loop().time() < deadline:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
        assert message is not None, "the event never reached the DLQ"
        await message.ack()
    finally:
        await connection.close()
    assert message.message_id == doc["event_id"]
    assert json.loads(message.body)["payload"]["org_id"] == unknown
    headers = message.headers or {}
    assert headers["x-retry-count"] == 3  # every retry of the test settings was spent first
    assert "not known yet" in str(headers["x-error"])
    assert headers["x-consumer"] == "identity"
