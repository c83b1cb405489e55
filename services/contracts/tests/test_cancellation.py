"""Contracts is the one writer of signed and void: a cancellation request voids an unsigned
contract and is refused for a signed one, saying so to orders (or, asked by the enterprise
before any payment, asks payments to terminate it); a second signature racing a
cancellation: exactly one of them wins. Termination by an administrator: the contract is
frozen (``terminating``) until payments, which owns money paid out, accepts or refuses;
refused at once when the settlement is known paid."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from common.events import (
    OrderTerminationAgreed,
    OrderTerminationRefused,
    TerminationAccepted,
    TerminationRefused,
)

API = "/api/v1"


async def state(deal: Any) -> str:
    return str((await deal.contract()).json()["state"])


async def answer(
    deal: Any,
    *,
    accepted: bool,
    code: str = "order_already_paid",
    reason: str = "",
    orders: bool = True,
    payments: bool = True,
) -> None:
    """The answers to the contract's pending termination request, as payments and orders would
    send them: both agree (``accepted``), or payments refuses (orders agreeing or not heard)."""
    requested = [p for t, p in await deal.events() if t == "contracts.termination_requested"][-1]
    ids = {"order_id": deal.order_id, "contract_id": deal.contract_id, "request_id": requested["request_id"]}
    sent = []
    if payments:
        payload = (
            TerminationAccepted(**ids, reason=requested["reason"])
            if accepted
            else TerminationRefused(**ids, reason_code=code, reason=reason or "企业已支付款项，订单不能取消")
        )
        sent.append(await deal.h.publish(payload, aggregate_id=deal.order_id, sequence=deal.payments_seq()))
    if orders:
        sent.append(
            await deal.h.publish(
                OrderTerminationAgreed(**ids), aggregate_id=deal.order_id, sequence=deal.seq + 20
            )
        )
        deal.seq += 1
    for doc in sent:
        await deal.h.redeliver(doc)  # delivered twice: applied once
    await deal.h.settle()


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
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_signed", "contracts.cancellation_refused"]
    refusal = events[1][1]
    assert (refusal["reason_code"], refusal["requested_by"]) == ("already_signed", "timeout")
    assert refusal["reason"] == "合同已签署，订单不能取消"


async def test_an_enterprise_cancel_of_a_signed_unpaid_order_asks_payments_then_terminates(deal: Any) -> None:
    await deal.signed()
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    c = (await deal.contract()).json()
    assert (c["state"], c["state_label"], c["actions"]) == ("terminating", "终止审核中", [])
    assert c["termination_requested_by"] == "enterprise"
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_signed", "contracts.termination_requested"]
    assert events[1][1]["requested_by"] == "enterprise" and events[1][1]["reason"] == "企业取消订单"
    r = await deal.sign(deal.enterprise)  # frozen
    assert r.status_code == 409
    await answer(deal, accepted=True)
    c = (await deal.contract()).json()
    assert c["state"] == "terminated" and c["terminated_by"] == "enterprise"
    events = await deal.events()
    assert [t for t, _ in events][-1] == "contracts.contract_terminated"
    assert events[-1][1]["terminated_by"] == "enterprise"


async def test_an_enterprise_cancel_payments_refuses_returns_to_signed_and_tells_orders_why(
    deal: Any,
) -> None:
    await deal.signed()
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    await answer(
        deal, accepted=False, code="payment_pending", reason="有待服务机构核实的汇款，请待核实后再取消订单"
    )
    c = (await deal.contract()).json()
    assert (
        c["state"] == "signed"
        and c["termination_refused_reason"] == "有待服务机构核实的汇款，请待核实后再取消订单"
    )
    events = await deal.events()
    assert [t for t, _ in events] == [
        "contracts.contract_signed",
        "contracts.termination_requested",
        "contracts.termination_withdrawn",
        "contracts.cancellation_refused",
    ]
    assert events[-1][1]["reason_code"] == "payment_pending"
    assert events[-2][1]["request_id"] == events[1][1]["request_id"]


async def test_an_enterprise_cancel_after_a_payment_is_refused_without_asking(deal: Any) -> None:
    await deal.signed()
    await deal.paid(6_000_000)
    await deal.h.settle()
    await deal.request_cancellation(terminate_if_signed=True)
    await deal.h.settle()
    assert await state(deal) == "signed"
    events = await deal.events()
    assert [t for t, _ in events] == ["contracts.contract_signed", "contracts.cancellation_refused"]
    assert events[1][1]["reason_code"] == "order_already_paid"


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
            refused = ["contracts.contract_signed", "contracts.cancellation_refused"]
            assert final == "signed" and kinds == refused, (final, kinds)
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
    assert r.status_code == 202, r.text
    assert (
        r.json()["state"] == "terminating"
        and r.json()["termination_request_reason"] == "服务机构长期未完成服务"
    )
    events = await deal.events()
    assert events[-1][0] == "contracts.termination_requested"
    assert (events[-1][1]["requested_by"], events[-1][1]["requested_by_user"]) == (
        "administrator",
        admin.user_id,
    )
    async with deal.h.db("contracts").session() as s:
        row = (await s.execute(text("SELECT action, target_id, reason FROM audit_log"))).one()
    assert tuple(row) == ("contract.terminate", deal.contract_id, "服务机构长期未完成服务")
    r = await deal.client.post(url, json={"reason": "再次"}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "contract_state"
    assert "终止审核中" in r.json()["detail"]
    await answer(deal, accepted=True)
    c = (await deal.contract()).json()
    assert (c["state"], c["terminate_reason"], c["terminated_by"]) == (
        "terminated",
        "服务机构长期未完成服务",
        "administrator",
    )
    events = await deal.events()
    assert events[-1][0] == "contracts.contract_terminated"


async def test_an_old_answer_never_decides_a_newer_request(deal: Any) -> None:
    await deal.signed()
    url = f"{API}/admin/contracts/{deal.contract_id}/terminate"
    admin = deal.h.issuer.staff("administrator")
    assert (await deal.client.post(url, json={"reason": "纠纷"}, headers=admin.headers)).status_code == 202
    first = [p for t, p in await deal.events() if t == "contracts.termination_requested"][-1]
    await answer(deal, accepted=False, code="service_completed", reason="服务已完成，不能终止合同")
    c = (await deal.contract()).json()
    assert c["state"] == "signed" and c["termination_refused_reason"] == "服务已完成，不能终止合同"
    assert (await deal.client.post(url, json={"reason": "再次"}, headers=admin.headers)).status_code == 202
    late = TerminationAccepted(
        order_id=deal.order_id, contract_id=deal.contract_id, request_id=first["request_id"], reason="纠纷"
    )
    await deal.h.publish(late, aggregate_id=deal.order_id, sequence=deal.payments_seq())
    await deal.h.settle()
    c = (await deal.contract()).json()
    assert c["state"] == "terminating" and c["termination_refused_reason"] is None


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


async def test_a_termination_waits_for_both_payments_and_orders_and_either_refusal_withdraws_it(
    deal: Any,
) -> None:
    await deal.signed()
    url = f"{API}/admin/contracts/{deal.contract_id}/terminate"
    admin = deal.h.issuer.staff("administrator")
    assert (await deal.client.post(url, json={"reason": "纠纷"}, headers=admin.headers)).status_code == 202
    await answer(deal, accepted=True, orders=False)  # payments agreed; orders has not answered
    assert await state(deal) == "terminating"
    requested = [p for t, p in await deal.events() if t == "contracts.termination_requested"][-1]
    refusal = OrderTerminationRefused(
        order_id=deal.order_id,
        contract_id=deal.contract_id,
        request_id=requested["request_id"],
        reason_code="service_completed",
        reason="服务已完成，不能终止合同（完成后的争议请线下处理并登记）",
    )
    await deal.h.publish(refusal, aggregate_id=deal.order_id, sequence=deal.seq + 30)
    await deal.h.settle()
    c = (await deal.contract()).json()
    assert c["state"] == "signed" and c["termination_refused_reason"].startswith("服务已完成")
    withdrawn = [p for t, p in await deal.events() if t == "contracts.termination_withdrawn"]
    assert [(w["request_id"], w["reason_code"]) for w in withdrawn] == [
        (requested["request_id"], "service_completed")
    ]
    assert "contracts.contract_terminated" not in [t for t, _ in await deal.events()]
