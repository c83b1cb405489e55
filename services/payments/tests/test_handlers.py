"""payments on the saga's events: a termination contracts announces without having asked
payments (the plan terminated, an unpaid claim cancelled, a refund due per confirmed transfer,
a paid claim kept and a conflict recorded for staff), and every handled event delivered twice
and out of order reaching the same end state. The decision itself, when contracts asks, is in
test_terminations.py."""

from __future__ import annotations

from typing import Any

from common.events import BankAccountChanged, ContractTerminated, ContractVoided, OrganizationCertified

API = "/api/v1"


def terminated(deal, by: str = "administrator") -> ContractTerminated:
    return ContractTerminated(
        order_id=deal.order_id,
        contract_id=f"contract-{deal.order_id}",
        reason="服务机构未能履约",
        terminated_by=by,
    )


async def end_state(deal) -> dict[str, Any]:
    """What a user could check of one order in payments, without ids and times."""
    plan = await deal.rows(
        "SELECT state, paid_fen, pending_fen, payable_fen, order_no, terminated_reason FROM payment_plans WHERE order_id = :o"
    )
    remittances = await deal.rows(
        "SELECT amount_fen, state FROM remittances WHERE order_id = :o ORDER BY amount_fen, state"
    )
    claims = await deal.rows("SELECT amount_fen, state FROM settlement_claims WHERE order_id = :o")
    refunds = await deal.rows(
        "SELECT amount_fen, state FROM payment_refunds WHERE order_id = :o ORDER BY amount_fen"
    )
    return {"plan": plan, "remittances": remittances, "claims": claims, "refunds": refunds}


async def test_a_termination_cancels_an_unpaid_claim_and_refuses_its_approval(deal_factory) -> None:
    deal = await deal_factory()
    await deal.confirmed(deal.payable_fen)
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)
    await deal.h.settle()
    claim = await deal.settlement()
    await deal.h.publish(terminated(deal), aggregate_id=deal.order_id, sequence=2)
    await deal.h.settle()
    after = await deal.settlement()
    assert (after["state"], after["state_label"]) == ("cancelled", "已取消")
    r = await deal.client.post(f"{API}/admin/settlements/{claim['id']}/approve", headers=deal.finance.headers)
    assert r.status_code == 409 and r.json()["code"] == "contract_terminated"
    state = await end_state(deal)
    assert state["refunds"] == [{"amount_fen": 4000, "state": "due"}]


async def test_a_paid_settlement_stands_when_a_termination_comes_anyway(deal_factory) -> None:
    deal = await deal_factory()
    await deal.confirmed(deal.payable_fen)
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)
    await deal.h.settle()
    sid = (await deal.settlement())["id"]
    files = {
        "invoice_file_ids": [deal.file(deal.provider)],
        "receipt_file_ids": [deal.file(deal.provider)],
        "proof_file_ids": [deal.file(deal.provider)],
    }
    assert (
        await deal.client.post(f"{API}/settlements/{sid}/claim", json=files, headers=deal.provider.headers)
    ).status_code == 200
    for action, body in (("approve", None), ("pay", {"payout_reference": "P-1"})):
        r = await deal.client.post(
            f"{API}/admin/settlements/{sid}/{action}", json=body, headers=deal.finance.headers
        )
        assert r.status_code == 200
    await deal.h.publish(terminated(deal), aggregate_id=deal.order_id, sequence=2)
    await deal.h.settle()
    assert (await deal.settlement())["state"] == "paid"
    conflicts = await deal.rows(
        "SELECT action, target_id, reason FROM audit_log WHERE action LIKE 'conflict.%'"
    )
    assert [(c["action"], c["target_id"]) for c in conflicts] == [
        ("conflict.termination_after_payout", deal.order_id)
    ]
    assert "不予追回" in conflicts[0]["reason"]


async def test_events_out_of_order_and_twice_reach_the_same_end_state_as_in_order(deal_factory) -> None:
    in_order = await deal_factory(signed=False)
    out_of_order = await deal_factory(signed=False)

    # in order: signed, completed, terminated
    h = in_order.h
    await h.publish(in_order.signed(), aggregate_id=in_order.order_id, sequence=1)
    await h.settle()
    await h.publish(in_order.completed(), aggregate_id=in_order.order_id, sequence=5)
    await h.settle()
    await h.publish(terminated(in_order), aggregate_id=in_order.order_id, sequence=2)
    await h.settle()

    # out of order, each twice: the termination and the completion before the signing
    h = out_of_order.h
    out_of_order.order_no = in_order.order_no
    term = await h.publish(terminated(out_of_order), aggregate_id=out_of_order.order_id, sequence=2)
    done = await h.publish(out_of_order.completed(), aggregate_id=out_of_order.order_id, sequence=5)
    signed = await h.publish(out_of_order.signed(), aggregate_id=out_of_order.order_id, sequence=1)
    for doc in (term, done, signed):
        await h.redeliver(doc)
    await h.settle()
    # the same signing once more under a new event id (a republished fact): still one plan
    await h.publish(out_of_order.signed(), aggregate_id=out_of_order.order_id, sequence=1)
    await h.settle()

    expected = await end_state(in_order)
    assert expected["plan"][0]["state"] == "terminated"
    assert expected["claims"] == [{"amount_fen": 1000, "state": "cancelled"}]
    assert await end_state(out_of_order) == expected


async def test_the_payee_is_the_account_last_announced_whatever_the_arrival_order(deal_factory) -> None:
    deal = await deal_factory()
    org = str(deal.provider.org_id)
    newer = BankAccountChanged(
        org_id=org,
        account_name="新户名",
        bank_name="中国工商银行",
        bank_region="广西",
        branch_name="柳州分行",
        account_number="62220000000000000003",
    )
    older = newer.model_copy(update={"account_number": "62220000000000000002", "account_name": "旧户名"})
    doc = await deal.h.publish(newer, aggregate_id=org, sequence=3)
    await deal.h.publish(older, aggregate_id=org, sequence=2)  # late
    await deal.h.redeliver(doc)
    await deal.h.settle()
    payee = (await deal.payment())["payee"]
    assert (payee["account_number"], payee["account_name"]) == ("62220000000000000003", "新户名")
    remittance = await deal.remitted(800)
    rows = await deal.rows(f"SELECT payee_account_number FROM remittances WHERE id = '{remittance}'")
    assert rows == [{"payee_account_number": "62220000000000000003"}]


async def test_a_void_changes_nothing_for_an_order_without_a_plan_and_closes_an_untouched_one(
    deal_factory,
) -> None:
    deal = await deal_factory(signed=False)
    voided = ContractVoided(order_id=deal.order_id, contract_id=None, reason="企业取消")
    doc = await deal.h.publish(voided, aggregate_id=deal.order_id, sequence=1)
    await deal.h.redeliver(doc)
    await deal.h.settle()
    assert await deal.rows("SELECT order_id FROM payment_plans") == []

    other = await deal_factory()
    await other.h.publish(
        ContractVoided(order_id=other.order_id, contract_id=None, reason="作废"),
        aggregate_id=other.order_id,
        sequence=2,
    )
    await other.h.settle()
    assert (await other.payment())["state"] == "closed"
    r = await other.remit(100)
    assert r.status_code == 409 and r.json()["code"] == "plan_closed"


async def test_a_signing_whose_figures_do_not_add_up_makes_no_plan(deal_factory) -> None:
    deal = await deal_factory(signed=False)
    await deal.h.publish(deal.signed(payable_fen=1), aggregate_id=deal.order_id, sequence=1)
    await deal.h.settle()
    assert await deal.rows("SELECT order_id FROM payment_plans") == []
    r = await deal.client.get(f"{API}/orders/{deal.order_id}/payment", headers=deal.enterprise.headers)
    assert r.status_code == 404


async def test_a_signing_announced_without_the_parties_names_takes_them_from_the_organisation_copies(
    deal_factory,
) -> None:
    """A contract_signed published before the event carried names (in flight at the upgrade):
    the plan, and the rows made from it, show the names payments' copies know."""
    deal = await deal_factory(signed=False)
    for org, name, kind, seq in (
        (deal.enterprise, "广西旧事件制造有限公司", "enterprise", 1),
        (deal.provider, "广西旧事件服务有限公司", "provider", 2),
    ):
        await deal.h.publish(
            OrganizationCertified(org_id=str(org.org_id), name=name, uscc="91450100MA5L000000", kind=kind),
            aggregate_id=str(org.org_id),
            sequence=seq,
        )
    await deal.h.settle()
    await deal.h.publish(
        deal.signed(enterprise_name="", provider_name="", product_name=""),
        aggregate_id=deal.order_id,
        sequence=1,
    )
    await deal.h.settle()
    await deal.remitted(400)
    [row] = await deal.rows(
        "SELECT enterprise_name, provider_name, product_name, order_no FROM remittances WHERE order_id = :o"
    )
    assert row == {
        "enterprise_name": "广西旧事件制造有限公司",
        "provider_name": "广西旧事件服务有限公司",
        "product_name": "",
        "order_no": deal.order_no,
    }
