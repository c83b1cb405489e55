"""双方接洽 (issue 13): once an order exists its two parties can reach each other. The order keeps,
from the moment it is submitted, the enterprise's contact (the account that ordered, as
identity's token names it) and the provider's (its contact and the service hotline it publishes
in catalog). Both parties and staff see both in full; nobody else sees the order at all.
(In-process bus: these are about the routes, not the transport.)"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

ENTERPRISE_CONTACT = {"name": "张三", "phone": "13912345678"}
PROVIDER_CONTACT = {"name": "李四", "phone": "0771-5551234"}


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


def contacts(seen: dict[str, Any]) -> dict[str, Any]:
    return seen["contacts"]


async def test_the_provider_sees_the_enterprises_contact_and_the_enterprise_the_providers(world) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    both = {"enterprise": ENTERPRISE_CONTACT, "provider": PROVIDER_CONTACT}
    # 待接单: the provider can call the enterprise before it accepts, and the enterprise the provider
    assert contacts(await w.get(order, w.provider)) == both
    assert contacts(await w.get(order, w.enterprise)) == both
    accepted = await w.post(order, "accept", w.provider)
    assert contacts(accepted) == both  # 待签合同: what they agree the contract on
    assert contacts(await w.get(order, w.enterprise)) == both


async def test_the_contacts_are_those_of_the_moment_of_submission(world) -> None:
    """A snapshot: the provider changing its hotline later does not rewrite an order, and the
    enterprise's contact is the account that ordered (its agent, 经办人, when the agent did)."""
    w = await world()
    agent = w.h.issuer.caller(
        role="agent", org_id=w.enterprise.org_id, caps=("enterprise",), name="王经办", phone="13711112222"
    )
    order = await w.submit(who=agent)
    w.catalog.products[w.product_id]["provider_contact_phone"] = "0771-5559999"
    seen = await w.get(order, w.provider)
    assert contacts(seen) == {
        "enterprise": {"name": "王经办", "phone": "13711112222"},
        "provider": PROVIDER_CONTACT,
    }
    later = await w.submit()
    assert contacts(await w.get(later, w.enterprise))["provider"]["phone"] == "0771-5559999"


async def test_nobody_but_the_parties_and_staff_sees_the_order_or_its_contacts(world) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    url = f"/api/v1/orders/{order['id']}"
    other_enterprise = w.h.issuer.member(caps=("enterprise",))
    other_provider = w.h.issuer.member(caps=("provider",))
    for stranger in (other_enterprise, other_provider):
        r = await w.api.get(url, headers=stranger.headers)
        assert r.status_code == 404 and r.json()["code"] == "order_not_found"
        assert "13912345678" not in r.text and "0771-5551234" not in r.text
    anonymous = await w.api.get(url)
    assert anonymous.status_code == 401 and "13912345678" not in anonymous.text
    # staff (a dispute, a complaint) see both
    staff = w.h.issuer.staff("reviewer")
    seen = await w.get(order, staff)
    assert contacts(seen) == {"enterprise": ENTERPRISE_CONTACT, "provider": PROVIDER_CONTACT}
    # the lists carry no contacts: a row is no place for them
    rows = (await w.api.get("/api/v1/me/service-orders", headers=w.provider.headers)).json()["items"]
    assert rows and all("contacts" not in row for row in rows)
    assert "contacts" not in order  # nor the answer to the submission


async def test_an_order_without_a_known_contact_shows_none_and_orders_as_before(world) -> None:
    """Orders submitted before contacts were kept (their columns empty), a token issued before
    identity named the account in it, a catalog that names no contact: no contact, no error."""
    w = await world()
    old = await w.submit()
    async with w.h.db("orders").transaction() as s:
        await s.execute(
            text(
                "UPDATE orders SET enterprise_contact_name = NULL, enterprise_contact_phone = NULL, "
                "provider_contact_name = NULL, provider_contact_phone = NULL WHERE id = :id"
            ),
            {"id": old["id"]},
        )
    assert contacts(await w.get(old, w.provider)) == {"enterprise": None, "provider": None}

    unnamed = w.h.issuer.member(org_id=w.enterprise.org_id, caps=("enterprise",))  # no name, no phone
    product = w.catalog.add(w.provider.org_id or "")
    for key in ("provider_contact_name", "provider_contact_phone"):
        del w.catalog.products[product][key]
    order = await w.submit(who=unnamed, product_id=product, use_voucher=False)
    assert order["status"] == "awaiting_acceptance"
    assert contacts(await w.get(order, w.provider)) == {"enterprise": None, "provider": None}
