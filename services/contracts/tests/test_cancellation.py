"""Contracts is the one writer of signed and void: a cancellation request voids an unsigned
contract and is refused for a signed one (or, asked by the enterprise before any payment,
terminates it); a second signature racing a cancellation: exactly one of them wins.
Termination by an administrator, refused once the settlement is known paid."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

API = "/api/v1"


async def state(deal: Any) -> str:
    return str((await deal.contract()).json()["state"])


async def test_a_cancellation_request_voids_a_draft_and_it_can_no_longer_be_signed(deal: Any) -> None:
    await deal.agreed()
    await deal.seal(deal.enterprise)
    doc = await deal.request_cancellation()
    await deal.h.redeliver(doc)  # delivered twice: voided once
    await deal.h.settle()
    assert await state(deal) == "voided"
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_voided"]
    assert events[0][1]["contract_id"] == deal.contract_id
    r = await deal.sign(deal.enterprise)
    assert r.status_code == 409 and r.json()["code"] == "contract_cancelled"
    r = await deal.put()
    assert r.status_code == 409


async def test_a_cancellation_request_before_the_acceptance_arrives_voids_and_no_draft_follows(
    deal: Any,
) -> None:
    deal.seq = 2  # the acceptance (sequence 2) is late: the request (3) comes first
    await deal.request_cancellation()
    await deal.h.settle()
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_voided"] and events[0][1]["contract_id"] is None
    deal.seq = 1
    await deal.accept()
    await deal.h.settle()
    assert (await deal.contract()).status_code == 404


async def test_a_cancellation_request_for_a_signed_contract_is_refused_and_the_signing_stands(
    deal: Any,
) -> None:
    await deal.signed()
    await deal.request_cancellation(requested_by="timeout")
    await deal.h.settle()
    assert await state(deal) == "signed"
    assert [t for t, _ in await deal.events()] == ["contracts.contract_signed"]


async def test_an_enterprise_cancel_of_a_signed_unpaid_order_terminates_the_contract(deal: Any) -> None:
    await deal.signed()
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    c = (await deal.contract()).json()
    assert c["state"] == "terminated" and c["terminated_by"] == "enterprise"
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_signed", "contracts.contract_terminated"]
    assert events[1][1]["terminated_by"] == "enterprise"


async def test_an_enterprise_cancel_after_a_payment_does_not_terminate(deal: Any) -> None:
    await deal.signed()
    await deal.paid(6_000_000)
    await deal.h.settle()
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    assert await state(deal) == "signed"
    assert [t for t, _ in await deal.events()] == ["contracts.contract_signed"]


async def test_the_second_signature_racing_a_cancellation_exactly_one_wins(deal: Any) -> None:
    # The cancellation is published first and the signature follows after a varying head
    # start, so both sides get to take the contract's lock first in some rounds.
    delays = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08]
    deals = [deal] + [deal.another() for _ in delays[1:]]
    for d in deals:
        await d.agreed()
        for who in (d.enterprise, d.provider):
            assert (await d.seal(who)).status_code in (201, 409)
        assert (await d.sign(d.enterprise)).status_code == 200

    async def late_signature(d: Any, delay: float) -> Any:
        await asyncio.sleep(delay)
        return await d.sign(d.provider)

    outcomes = []
    for d, delay in zip(deals, delays, strict=True):
        _, signing = await asyncio.gather(d.request_cancellation(), late_signature(d, delay))
        await d.h.settle()
        final = await state(d)
        kinds = [t for t, _ in await d.events()]
        if signing.status_code == 200:
            assert final == "signed" and kinds == ["contracts.contract_signed"], (final, kinds)
        else:
            assert signing.json()["code"] in ("contract_cancelled", "contract_state"), signing.text
            assert final == "voided" and kinds == ["contracts.contract_voided"], (final, kinds)
        outcomes.append(final)
    assert set(outcomes) <= {"signed", "voided"}


async def test_an_administrator_terminates_a_signed_contract_with_a_reason(deal: Any) -> None:
    await deal.signed()
    url = f"{API}/admin/contracts/{deal.contract_id}/terminate"
    r = await deal.client.post(url, json={"reason": "纠纷"}, headers=deal.h.issuer.staff("reviewer").headers)
    assert r.status_code == 403
    r = await deal.client.post(url, json={"reason": "纠纷"}, headers=deal.enterprise.headers)
    assert r.status_code == 403
    admin = deal.h.issuer.staff("administrator")
    r = await deal.client.post(url, json={"reason": "服务机构长期未完成服务"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "terminated" and r.json()["terminate_reason"] == "服务机构长期未完成服务"
    events = await deal.events()
    assert (
        events[-1][0] == "contracts.contract_terminated" and events[-1][1]["terminated_by"] == "administrator"
    )
    async with deal.h.db("contracts").session() as s:
        row = (await s.execute(text("SELECT action, target_id, reason FROM audit_log"))).one()
    assert tuple(row) == ("contract.terminate", deal.contract_id, "服务机构长期未完成服务")
    r = await deal.client.post(url, json={"reason": "再次"}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "contract_state"


async def test_termination_is_refused_once_the_settlement_is_paid_and_nothing_changes(deal: Any) -> None:
    await deal.signed()
    await deal.paid(21_000_000)
    await deal.settled()
    await deal.h.settle()
    admin = deal.h.issuer.staff("administrator")
    r = await deal.client.post(
        f"{API}/admin/contracts/{deal.contract_id}/terminate", json={"reason": "纠纷"}, headers=admin.headers
    )
    assert r.status_code == 409 and r.json()["code"] == "settlement_paid"
    assert await state(deal) == "signed"
    assert [t for t, _ in await deal.events()] == ["contracts.contract_signed"]


async def test_an_unsigned_contract_cannot_be_terminated(deal: Any) -> None:
    await deal.drafted()
    admin = deal.h.issuer.staff("administrator")
    r = await deal.client.post(
        f"{API}/admin/contracts/{deal.contract_id}/terminate", json={"reason": "纠纷"}, headers=admin.headers
    )
    assert r.status_code == 409 and r.json()["code"] == "contract_state"
    assert await state(deal) == "drafting"
