"""Suspension (identity's events): a suspended organisation cannot publish, respond or write
messages; its demands leave the public board and come back on restore. On RabbitMQ and
in-process: the copy is filled by the real consumer."""

from __future__ import annotations

import pytest

from common.events import OrganizationRestored, OrganizationSuspended
from common.testing.saga import known_org

from .conftest import World
from .test_demands import problem


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_suspended_enterprise_leaves_the_board_and_comes_back(world: World) -> None:
    w = world
    demand = await w.published()
    await w.respond(demand["id"])
    org_id = str(w.enterprise.org_id)

    await w.h.publish(OrganizationSuspended(org_id=org_id, reason="违规"), aggregate_id=org_id, sequence=10)
    await w.h.settle()
    known_org(w.identity, org_id).suspended = True  # identity knows it too
    assert (await w.call("GET", "/demands")).json()["total"] == 0
    problem(await w.call("GET", f"/demands/{demand['id']}"), 404, "demand_not_found")
    problem(
        await w.call("POST", "/me/demands", w.enterprise, json=w.demand_body()), 403, "organization_suspended"
    )
    problem(
        await w.call("POST", "/me/messages", w.enterprise, json={"content": "申诉"}),
        403,
        "organization_suspended",
    )
    # What it published is still its own to read.
    assert (await w.call("GET", f"/me/demands/{demand['id']}/responses", w.enterprise)).status_code == 200

    await w.h.publish(
        OrganizationRestored(org_id=org_id, reason="整改完成"), aggregate_id=org_id, sequence=11
    )
    await w.h.settle()
    known_org(w.identity, org_id).suspended = False
    assert [d["id"] for d in (await w.call("GET", "/demands")).json()["items"]] == [demand["id"]]


async def test_a_suspended_provider_cannot_respond(world: World) -> None:
    w = world
    demand = await w.published()
    org_id = str(w.provider.org_id)
    await w.h.publish(OrganizationSuspended(org_id=org_id, reason="违规"), aggregate_id=org_id, sequence=10)
    await w.h.settle()
    known_org(w.identity, org_id).suspended = True
    problem(await w.respond(demand["id"]), 403, "organization_suspended")
    assert (await w.call("GET", f"/demands/{demand['id']}")).json()["response_count"] == 0
