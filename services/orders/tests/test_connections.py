"""orders' database connections under load: a request (a submission, an acceptance) holds
none, and no order's lock, while it waits for another service, so events are applied
meanwhile. (In-process bus: the consumer shares the process's pool with the routes, as on
RabbitMQ.)"""

from __future__ import annotations

import asyncio
import uuid

import pytest


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


async def held_while_the_saga_goes_on(w, peer, slow: list, waiting: dict, what: str) -> list:
    """Hold ``peer``'s answers until every request of ``slow`` has reached it, and meanwhile
    have the consumer apply quota's reservation of ``waiting``; then let them go and return
    their answers. Fails naming how many got there when connections are held across the read
    (two connections in all: none left for the consumer)."""
    peer.gate = asyncio.Event()
    requests = [asyncio.ensure_future(r) for r in slow]
    arrived = 0
    try:
        async with asyncio.timeout(10):
            for _ in requests:
                await peer.arrived.get()
                arrived += 1  # waiting on the peer
            await w.reserved(waiting)  # applied by the consumer before this returns
    except TimeoutError:
        pytest.fail(
            f"{arrived} of {len(requests)} {what} within 10 s and the reservation was not "
            "applied: connections held across the read"
        )
    finally:
        peer.gate.set()
    return list(await asyncio.gather(*requests))


async def test_submissions_waiting_on_a_slow_catalog_leave_connections_for_the_saga(world) -> None:
    """POST /orders reads the product from catalog and the quote from quota. Were its session
    holding a connection in an open transaction across those reads, a slow catalog would fill
    the pool with idle transactions and the consumer (the same pool) could apply nothing: the
    fault test saw orders' consumer fall to a few events a minute under 10 orders a second on
    a busy machine while quota kept reserving. Two connections in all here."""
    w = await world({"db_pool_size": 1})
    waiting = await w.submit()  # decided below, while the others wait on catalog
    slow = [
        w.api.post(
            "/api/v1/orders",
            json={"product_id": w.product_id, "use_voucher": True},
            headers={**w.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        for _ in range(4)
    ]
    answers = await held_while_the_saga_goes_on(w, w.catalog, slow, waiting, "submissions reached catalog")
    assert [r.status_code for r in answers] == [201] * len(slow)
    assert (await w.get(waiting))["status"] == "awaiting_acceptance"


async def test_an_acceptance_waiting_on_identity_leaves_the_order_to_the_enterprise_and_the_saga(
    world,
) -> None:
    """接单 asks identity whether the provider has a receiving account. Were the order locked
    meanwhile (the fault test kills identity), the enterprise's cancellation and every event
    of the order (quota's answer, a cancellation) would wait on identity. The acceptance then
    decides on the order as it is under its lock: cancelled meanwhile, it is refused."""
    w = await world()
    order = await w.submit(use_voucher=False)
    w.identity.gate = asyncio.Event()
    accepting = asyncio.ensure_future(
        w.api.post(f"/api/v1/orders/{order['id']}/accept", headers=w.provider.headers)
    )
    try:
        async with asyncio.timeout(10):
            await w.identity.arrived.get()  # the acceptance is asking identity
            cancelled = await w.api.post(f"/api/v1/orders/{order['id']}/cancel", headers=w.enterprise.headers)
    except TimeoutError:
        pytest.fail("the cancellation waited 10 s: the order was locked while identity was asked")
    finally:
        w.identity.gate.set()
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    refused = await accepting
    assert refused.status_code == 409 and refused.json()["code"] == "order_state_conflict", refused.text
    assert "订单取消" in refused.json()["detail"]
    await w.settle()
    assert "orders.order_accepted" not in await w.published_types(order["id"])


@pytest.mark.parametrize("copy", ["current", "behind_the_token"])
async def test_acceptances_waiting_on_a_slow_identity_leave_connections_for_the_saga(world, copy) -> None:
    """Four acceptances while identity is slow, two connections in all: each asks identity
    (the receiving account; and, when orders' copy of the provider is older than its token,
    the provider's standing) while holding no connection, and the consumer applies quota's
    reservation of another order meanwhile."""
    w = await world({"db_pool_size": 1})
    provider = w.provider
    if copy == "behind_the_token":  # certified a moment ago: orders has not heard yet
        provider = w.h.issuer.member(w.provider.org_id, caps=("enterprise", "provider"))
    accepted = [await w.submit(use_voucher=False) for _ in range(4)]
    waiting = await w.submit()  # reserved below, while the acceptances wait on identity
    slow = [w.api.post(f"/api/v1/orders/{o['id']}/accept", headers=provider.headers) for o in accepted]
    answers = await held_while_the_saga_goes_on(w, w.identity, slow, waiting, "acceptances reached identity")
    assert [r.status_code for r in answers] == [200] * len(slow), [r.text for r in answers]
    assert {r.json()["status"] for r in answers} == {"awaiting_contract"}
    assert (await w.get(waiting))["status"] == "awaiting_acceptance"


@pytest.mark.parametrize("unknown", ["enterprise_behind_the_token", "provider_without_a_copy"])
async def test_submissions_waiting_on_a_slow_identity_leave_connections_for_the_saga(world, unknown) -> None:
    """POST /orders asks identity about the enterprise when orders' copy of it is older than
    its token (certified a moment ago), and about the provider when orders has no copy of it
    yet. Four submissions while identity is slow, two connections in all: each asks identity
    holding no connection, and the consumer applies quota's reservation of another order
    meanwhile (the year-end rush with identity slow starved the pool the consumer shares)."""
    w = await world({"db_pool_size": 1})
    who, product_id = w.enterprise, w.product_id
    if unknown == "enterprise_behind_the_token":  # certified a moment ago: orders has not heard yet
        who = w.h.issuer.member(caps=("enterprise",), name="王五", phone="13912340000")
    else:  # a provider approved a moment ago, its product read from catalog
        product_id = w.catalog.add(w.h.issuer.member(caps=("provider",)).org_id or "")
    waiting = await w.submit()  # reserved below, while the submissions wait on identity
    slow = [
        w.api.post(
            "/api/v1/orders",
            json={"product_id": product_id, "use_voucher": False},
            headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        for _ in range(4)
    ]
    answers = await held_while_the_saga_goes_on(w, w.identity, slow, waiting, "submissions reached identity")
    assert [r.status_code for r in answers] == [201] * len(slow), [r.text for r in answers]
    assert {r.json()["status"] for r in answers} == {"awaiting_acceptance"}
    assert (await w.get(waiting))["status"] == "awaiting_acceptance"
