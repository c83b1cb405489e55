"""orders' database connections under load: a submission holds none while it waits for
another service, so events are applied meanwhile. (In-process bus: the consumer shares the
process's pool with the routes, as on RabbitMQ.)"""

from __future__ import annotations

import asyncio
import uuid

import pytest


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


async def test_submissions_waiting_on_a_slow_catalog_leave_connections_for_the_saga(world) -> None:
    """POST /orders reads the product from catalog and the quote from quota. Were its session
    holding a connection in an open transaction across those reads, a slow catalog would fill
    the pool with idle transactions and the consumer (the same pool) could apply nothing: the
    fault test saw orders' consumer fall to a few events a minute under 10 orders a second on
    a busy machine while quota kept reserving. Two connections in all here."""
    w = await world({"db_pool_size": 1})
    waiting = await w.submit()  # decided below, while the others wait on catalog
    w.catalog.gate = asyncio.Event()
    slow = [
        asyncio.ensure_future(
            w.api.post(
                "/api/v1/orders",
                json={"product_id": w.product_id, "use_voucher": True},
                headers={**w.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
            )
        )
        for _ in range(4)
    ]
    arrived = 0
    try:
        async with asyncio.timeout(10):
            for _ in slow:
                await w.catalog.arrived.get()
                arrived += 1  # waiting on catalog
            await w.reserved(waiting)  # applied by the consumer before this returns
    except TimeoutError:
        pytest.fail(
            f"{arrived} of {len(slow)} submissions reached catalog within 10 s and the reservation "
            "was not applied: connections held across the read of catalog"
        )
    finally:
        w.catalog.gate.set()
    assert [r.status_code for r in await asyncio.gather(*slow)] == [201] * len(slow)
    assert (await w.get(waiting))["status"] == "awaiting_acceptance"
