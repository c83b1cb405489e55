"""Payments decides whether a contract may be terminated (DESIGN.md "Termination"), under the
plan's lock, the one every payout takes: refused once the settlement is paid or the service is
complete, and for an enterprise's cancel once anything is paid, pending or the service has
started; accepted, every payout is held until contracts terminates the contract (then
confirmed money is owed back and a transfer still pending stays decidable: confirmed later, it
is owed back too) or withdraws the request (payouts go on)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.events import (
    ContractTerminated,
    ServiceCompleted,
    ServiceStarted,
    TerminationRequested,
    TerminationWithdrawn,
)

API = "/api/v1"


async def ask(deal, *, by: str = "administrator", sequence: int = 3, twice: bool = True) -> str:
    request_id = str(uuid.uuid4())
    doc = await deal.h.publish(
        TerminationRequested(
            order_id=deal.order_id,
            contract_id=f"contract-{deal.order_id}",
            request_id=request_id,
            reason="服务机构未能履约",
            requested_by=by,
        ),
        aggregate_id=deal.order_id,
        sequence=sequence,
    )
    if twice:
        await deal.h.redeliver(doc)
    await deal.h.settle()
    return request_id


async def terminated(deal, sequence: int = 4) -> None:
    """Contracts terminates the contract (payments and orders both agreed)."""
    await deal.h.publish(
        ContractTerminated(
            order_id=deal.order_id,
            contract_id=f"contract-{deal.order_id}",
            reason="服务机构未能履约",
            terminated_by="administrator",
        ),
        aggregate_id=deal.order_id,
        sequence=sequence,
    )
    await deal.h.settle()


async def answers(deal) -> list[tuple[str, dict[str, Any]]]:
    rows = await deal.rows(
        "SELECT event_type, body FROM outbox WHERE aggregate_id = :o AND event_type LIKE 'payments.termination_%' ORDER BY sequence"
    )
    return [(r["event_type"], r["body"]["payload"]) for r in rows]


async def service(deal, what: str, sequence: int) -> None:
    kind = ServiceStarted if what == "started" else ServiceCompleted
    parties = {"enterprise_id": str(deal.enterprise.org_id), "provider_id": str(deal.provider.org_id)}
    await deal.h.publish(
        kind(order_id=deal.order_id, **parties), aggregate_id=deal.order_id, sequence=sequence
    )
    await deal.h.settle()


async def test_an_accepted_termination_owes_back_what_was_confirmed_and_keeps_a_pending_transfer_decidable(
    deal_factory,
) -> None:
    deal = await deal_factory()
    await deal.confirmed(800)  # the deposit
    pending = await deal.remitted(400)  # a transfer the provider has not verified yet
    request_id = await ask(deal)
    assert [(t, p["request_id"]) for t, p in await answers(deal)] == [
        ("payments.termination_accepted", request_id)
    ]
    held = await deal.payment()
    assert (held["state"], held["termination_pending"], held["actions"]) == ("open", True, [])
    r = await deal.remit(100)  # the contract is frozen: no new transfer
    assert r.status_code == 409 and r.json()["code"] == "termination_pending"
    await terminated(deal)
    view = await deal.payment(deal.provider)
    assert (view["state"], view["state_label"]) == ("terminated", "合同已终止")
    assert (view["paid_fen"], view["pending_fen"]) == (800, 400)
    assert view["actions"] == ["confirm", "reject"]  # the money it received must not vanish
    assert [f["amount_fen"] for f in view["refunds"]] == [800]
    r = await deal.remit(100)  # nothing new is recorded
    assert r.status_code == 409 and r.json()["code"] == "contract_terminated"
    assert "remit" not in (await deal.payment())["actions"]

    r = await deal.decide(pending)  # the provider confirms it received the 400 after all
    assert r.status_code == 200, r.text
    view = await deal.payment()
    assert sorted((f["amount_fen"], f["state"]) for f in view["refunds"]) == [(400, "due"), (800, "due")]
    r = await deal.client.get(f"{API}/admin/refunds?state=due", headers=deal.finance.headers)
    assert sorted(i["amount_fen"] for i in r.json()["items"]) == [400, 800]
    assert {(i["enterprise_name"], i["provider_name"]) for i in r.json()["items"]} == {
        ("广西某某机械制造有限公司", "广西某某科技服务有限公司")
    }


async def test_a_rejected_pending_transfer_after_the_termination_owes_nothing_back(deal_factory) -> None:
    deal = await deal_factory()
    pending = await deal.remitted(400)
    await ask(deal)
    await terminated(deal)
    r = await deal.decide(pending, "reject", reason="未收到该笔款项")
    assert r.status_code == 200, r.text
    view = await deal.payment()
    assert (view["pending_fen"], view["refunds"], view["actions"]) == (0, [], [])


async def test_a_completion_heard_after_the_accepted_termination_opens_nothing_to_pay_and_is_a_conflict(
    deal_factory,
) -> None:
    deal = await deal_factory()
    await deal.confirmed(deal.payable_fen)
    await ask(deal)
    await terminated(deal)
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)  # orders lagged
    await deal.h.settle()
    claim = await deal.settlement()
    assert claim is not None and claim["state"] == "cancelled" and claim["actions"] == []
    r = await deal.client.post(
        f"{API}/settlements/{claim['id']}/claim",
        json={
            "invoice_file_ids": [deal.file(deal.provider)],
            "receipt_file_ids": [deal.file(deal.provider)],
            "proof_file_ids": [deal.file(deal.provider)],
        },
        headers=deal.provider.headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "contract_terminated"
    conflicts = await deal.rows("SELECT action, target_id FROM audit_log WHERE action LIKE 'conflict.%'")
    assert conflicts == [
        {"action": "conflict.service_completed_after_termination", "target_id": deal.order_id}
    ]


@pytest.mark.parametrize(
    ("by", "paid", "pending", "started", "completed", "answer"),
    [
        ("administrator", 0, 0, False, False, "accepted"),
        ("administrator", 800, 400, True, False, "accepted"),  # a dispute while in service
        ("administrator", 800, 0, True, True, "service_completed"),
        ("enterprise", 0, 0, False, False, "accepted"),
        ("enterprise", 800, 0, False, False, "order_already_paid"),
        ("enterprise", 0, 400, False, False, "payment_pending"),
        ("enterprise", 0, 0, True, False, "service_started"),
        ("enterprise", 0, 0, True, True, "service_completed"),
    ],
)
async def test_who_asks_and_what_payments_knows_decide_the_answer(
    deal_factory, by: str, paid: int, pending: int, started: bool, completed: bool, answer: str
) -> None:
    deal = await deal_factory()
    if paid:
        await deal.confirmed(paid)
    if pending:
        await deal.remitted(pending)
    if started:
        await service(deal, "started", 3)
    if completed:
        await service(deal, "completed", 4)
    before = await deal.payment()
    await ask(deal, by=by)
    [(kind, body)] = await answers(deal)
    after = await deal.payment()
    if answer == "accepted":
        assert kind == "payments.termination_accepted" and after["termination_pending"] is True
        assert "remit" not in after["actions"]
    else:
        assert (kind, body["reason_code"]) == ("payments.termination_refused", answer)
        assert body["reason"] and after == before  # refused: nothing changed


async def test_a_withdrawn_request_lets_payouts_go_on(deal_factory) -> None:
    deal = await deal_factory()
    request_id = await ask(deal)
    assert (await deal.payment())["termination_pending"] is True
    await deal.h.publish(
        TerminationWithdrawn(
            order_id=deal.order_id,
            contract_id=f"contract-{deal.order_id}",
            request_id=request_id,
            reason_code="service_completed",
            reason="服务已完成，不能终止合同",
        ),
        aggregate_id=deal.order_id,
        sequence=4,
    )
    await deal.h.settle()
    view = await deal.payment()
    assert (view["state"], view["termination_pending"], view["actions"]) == ("open", False, ["remit"])
