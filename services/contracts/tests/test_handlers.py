"""Contracts's handlers under at-least-once, out-of-order delivery and crashes: the same end
state whatever the order the saga allows, every event applied once."""

from __future__ import annotations

from typing import Any

import pytest

from common.events import OrderCancelled
from common.reads import PortalStats

API = "/api/v1"


async def test_a_late_acceptance_after_the_orders_cancellation_makes_no_draft(deal: Any) -> None:
    await deal.h.publish(
        OrderCancelled(order_id=deal.order_id, reason="超时未接单", cancelled_by="timeout"),
        aggregate_id=deal.order_id,
        sequence=3,
    )
    await deal.h.settle()
    doc = await deal.accept()  # sequence 2, after 3: stale
    await deal.h.redeliver(doc)
    await deal.h.settle()
    assert (await deal.contract()).status_code == 404
    assert await deal.events() == []


@pytest.mark.parametrize("after", [2, 5, 8])
async def test_a_crash_in_the_middle_of_a_void_leaves_nothing_half_done(deal: Any, after: int) -> None:
    await deal.drafted()
    deal.h.crash("contracts", "orders.cancellation_requested", after_statements=after)
    await deal.request_cancellation()
    await deal.h.settle()
    assert (await deal.contract()).json()["state"] == "voided"
    assert [t for t, _ in await deal.events()] == ["contracts.contract_voided"]


async def test_a_crash_while_drafting_still_makes_exactly_one_draft(deal: Any) -> None:
    deal.h.crash("contracts", "orders.order_accepted", after_statements=2)
    doc = await deal.accept()
    await deal.h.redeliver(doc)
    await deal.h.settle()
    r = await deal.client.get(f"{API}/admin/contracts", headers=deal.h.issuer.staff().headers)
    assert r.json()["total"] == 1


async def test_payment_and_settlement_facts_are_kept_in_either_order(deal: Any) -> None:
    await deal.signed()
    await deal.settled(seq=2)  # the settlement's event overtakes the payment's
    await deal.paid(21_000_000, seq=1)
    await deal.h.settle()
    admin = deal.h.issuer.staff("administrator")
    r = await deal.client.post(
        f"{API}/admin/contracts/{deal.contract_id}/terminate", json={"reason": "纠纷"}, headers=admin.headers
    )
    assert r.status_code == 409 and r.json()["code"] == "settlement_paid"
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    assert (await deal.contract()).json()["state"] == "signed"


async def test_the_portal_counts_signed_contracts(deal: Any) -> None:
    from common.auth import issue_service_token

    await deal.signed()
    other = deal.another()
    await other.drafted()
    secret = deal.h["contracts"].runtime.settings.service_token_secret
    r = await deal.client.get(
        "/internal/stats", headers={"Authorization": f"Bearer {issue_service_token(secret, 'gateway')}"}
    )
    assert r.json() == {"signed_contracts": 1}
    assert PortalStats.model_validate(r.json()).model_dump(mode="json") == r.json()  # the gateway's contract


async def test_a_draft_can_be_previewed_as_a_pdf_before_agreement(deal: Any) -> None:
    await deal.drafted()
    await deal.put()
    r = await deal.client.get(f"{API}/contracts/{deal.contract_id}/document", headers=deal.provider.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF") and b"/FontFile2" in r.content
