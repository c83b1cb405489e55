"""The payment screen (8.4 企业支付金额) and remittances: installments, 到账核实, the figures of
``payments.payment_received``, concurrency, and every bad input refused with nothing changed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from common.testing.data import LOOSE_AMOUNTS

API = "/api/v1"


async def test_a_signed_contract_shows_both_parties_what_to_pay_to_whom_in_figures_and_capitals(
    deal_factory,
) -> None:
    deal = await deal_factory()
    doc = await deal.payment()
    assert doc["total_fen"] == 5000 and doc["subsidy_fen"] == 1000
    assert (doc["payable_fen"], doc["deposit_fen"], doc["balance_fen"]) == (4000, 800, 3200)
    assert doc["payable_upper"] == "肆拾元整"  # 实付大写金额(人民币)
    assert (doc["paid_fen"], doc["pending_fen"], doc["outstanding_fen"]) == (0, 0, 4000)
    assert (doc["suggested_fen"], doc["suggested_stage"]) == (800, "合同定金")  # 汇款金额: 8 合同定金
    assert doc["account_method"] == "对公转账"
    assert doc["payee"]["account_number"] == "45050160360600000001"
    assert doc["payee"]["branch_name"] == "南宁民族大道支行"
    assert doc["order_no"] == deal.order_no
    assert doc["state"] == "open" and doc["state_label"] == "待支付"
    assert doc["actions"] == ["remit"]

    assert (await deal.payment(deal.provider))["payable_fen"] == 4000
    assert (await deal.payment(deal.finance))["payable_fen"] == 4000
    for stranger in (deal.other_enterprise, deal.other_provider):
        r = await deal.client.get(f"{API}/orders/{deal.order_id}/payment", headers=stranger.headers)
        assert r.status_code == 404 and r.json()["code"] == "payment_plan_not_found"
    r = await deal.client.get(f"{API}/orders/{uuid.uuid4()}/payment", headers=deal.enterprise.headers)
    assert r.status_code == 404


async def test_the_deposit_in_two_installments_then_the_balance_each_confirmation_announcing_the_figures(
    deal_factory,
) -> None:
    deal = await deal_factory()
    receipt = deal.file(deal.enterprise, "转账回单.pdf")
    first = await deal.remitted(400, receipt_file_ids=[receipt])
    second = await deal.remitted(400)
    doc = await deal.payment()
    assert (doc["paid_fen"], doc["pending_fen"], doc["outstanding_fen"]) == (0, 800, 4000)
    assert [r["state"] for r in doc["remittances"]] == ["pending", "pending"]
    assert doc["remittances"][0]["receipt_file_ids"] == [receipt]
    assert doc["remittances"][0]["payee_account_number"] == "45050160360600000001"
    assert deal.h.peers["identity"].state.grants == [(receipt, deal.provider.org_id)]  # the payee may read it

    r = await deal.decide(first)  # the payee provider confirms
    assert r.status_code == 200 and r.json()["state"] == "confirmed" and r.json()["state_label"] == "已到账"
    r = await deal.decide(second, who=deal.finance)  # or finance does
    assert r.status_code == 200
    balance = await deal.remitted(3200)
    assert (await deal.decide(balance)).status_code == 200

    received = await deal.published("payments.payment_received")
    figures = [
        (e["amount_fen"], e["paid_fen"], e["outstanding_fen"], e["deposit_met"], e["fully_paid"])
        for e in received
    ]
    assert figures == [
        (400, 400, 3600, False, False),
        (400, 800, 3200, True, False),
        (3200, 4000, 0, True, True),
    ]
    assert [e["remittance_id"] for e in received] == [first, second, balance]
    # the enterprise's notice (demands) names the order; the payee's says what to verify
    assert {(e["enterprise_id"], e["provider_id"], e["order_no"]) for e in received} == {
        (deal.enterprise.org_id, deal.provider.org_id, deal.order_no)
    }
    recorded = await deal.published("payments.remittance_recorded")
    assert [(e["remittance_id"], e["amount_fen"]) for e in recorded] == [
        (first, 400),
        (second, 400),
        (balance, 3200),
    ]
    assert (
        recorded[0]["bank_reference"].startswith("BR-") and recorded[0]["provider_id"] == deal.provider.org_id
    )
    doc = await deal.payment()
    assert (doc["paid_fen"], doc["pending_fen"], doc["outstanding_fen"]) == (4000, 0, 0)
    assert doc["fully_paid"] and doc["state"] == "closed" and doc["state_label"] == "已付清"
    assert doc["actions"] == []
    audit = await deal.rows("SELECT action, actor_role FROM audit_log")
    assert audit == [{"action": "remittance.confirm", "actor_role": "finance"}]  # the staff decision


async def test_the_same_idempotency_key_replays_the_first_remittance_and_records_nothing_more(
    deal_factory,
) -> None:
    deal = await deal_factory()
    first = await deal.remit(800, key="k-1")
    again = await deal.remit(800, key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    assert (await deal.payment())["pending_fen"] == 800
    other = await deal.remit(700, key="k-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    missing = await deal.client.post(
        f"{API}/orders/{deal.order_id}/remittances",
        json={"amount_fen": 1, "bank_reference": "x", "payer_account": "y"},
        headers=deal.enterprise.headers,
    )
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    assert len(await deal.rows("SELECT id FROM remittances")) == 1


async def test_twenty_remittances_recorded_at_once_never_exceed_what_is_owed(deal_factory) -> None:
    deal = await deal_factory()
    responses = await asyncio.gather(*(deal.remit(300) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 13  # 13 x 300 = 3900 <= 4000 < 14 x 300
    assert statuses.count(409) == 7
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"remittance_exceeds_outstanding"}
    doc = await deal.payment()
    assert doc["pending_fen"] == 3900 and doc["paid_fen"] == 0 and doc["room_fen"] == 100
    rows = await deal.rows("SELECT sum(amount_fen) AS s, count(*) AS n FROM remittances")
    assert rows == [{"s": 3900, "n": 13}]


async def test_confirmations_of_one_order_at_once_add_up_exactly(deal_factory) -> None:
    deal = await deal_factory()
    ids = [await deal.remitted(400) for _ in range(10)]
    responses = await asyncio.gather(*(deal.decide(i, who=deal.finance) for i in ids))
    assert {r.status_code for r in responses} == {200}
    doc = await deal.payment()
    assert (doc["paid_fen"], doc["pending_fen"], doc["fully_paid"]) == (4000, 0, True)
    paid = sorted(e["paid_fen"] for e in await deal.published("payments.payment_received"))
    assert paid == [400 * n for n in range(1, 11)]


async def test_every_bad_remittance_or_decision_is_a_clear_problem_and_changes_nothing(deal_factory) -> None:
    deal = await deal_factory()
    pending = await deal.remitted(800)
    before = await deal.payment()

    over = await deal.remit(3201)  # 800 pending + 3201 > 4000
    assert over.status_code == 409 and over.json()["code"] == "remittance_exceeds_outstanding"
    assert "还可登记 32 元" in over.json()["detail"]
    zero = await deal.remit(0)
    assert zero.status_code == 422 and zero.json()["code"] == "validation_error"
    others = await deal.remit(100, who=deal.other_enterprise)  # a remittance on another's order
    assert others.status_code == 404 and others.json()["code"] == "payment_plan_not_found"
    by_provider = await deal.remit(100, who=deal.provider)
    assert by_provider.status_code == 403 and by_provider.json()["code"] == "enterprise_of_order_required"
    by_staff = await deal.remit(100, who=deal.finance)
    assert by_staff.status_code == 403
    foreign_file = await deal.remit(100, receipt_file_ids=[deal.file(deal.other_enterprise)])
    assert foreign_file.status_code == 422 and foreign_file.json()["code"] == "file_not_owned"
    unknown_file = await deal.remit(100, receipt_file_ids=["nope"])
    assert unknown_file.status_code == 422 and unknown_file.json()["code"] == "file_unknown"

    not_payee = await deal.decide(pending, who=deal.other_provider)  # a provider who is not the payee
    assert not_payee.status_code == 404 and not_payee.json()["code"] == "remittance_not_found"
    by_enterprise = await deal.decide(pending, who=deal.enterprise)
    assert by_enterprise.status_code == 403 and by_enterprise.json()["code"] == "enterprise_cannot_confirm"
    reviewer = await deal.decide(pending, who=deal.h.issuer.staff("reviewer"))
    assert reviewer.status_code == 403 and reviewer.json()["code"] == "forbidden_role"
    no_reason = await deal.decide(pending, "reject")
    assert no_reason.status_code == 422
    missing = await deal.decide(str(uuid.uuid4()))
    assert missing.status_code == 404

    assert await deal.payment() == before
    assert await deal.published("payments.payment_received") == []

    assert (await deal.decide(pending)).status_code == 200
    twice = await deal.decide(pending)  # a second confirmation
    assert twice.status_code == 409 and twice.json()["code"] == "remittance_not_pending"
    reject_after = await deal.decide(pending, "reject", reason="未到账")
    assert reject_after.status_code == 409 and reject_after.json()["code"] == "remittance_not_pending"
    assert len(await deal.published("payments.payment_received")) == 1
    assert (await deal.payment())["paid_fen"] == 800


async def test_a_rejected_transfer_gives_its_room_back_and_never_counts_as_paid(deal_factory) -> None:
    deal = await deal_factory()
    wrong = await deal.remitted(4000)
    assert (await deal.remit(1)).status_code == 409
    r = await deal.decide(wrong, "reject", reason="未查询到该笔到账")
    assert (
        r.status_code == 200
        and r.json()["state"] == "rejected"
        and r.json()["reject_reason"] == "未查询到该笔到账"
    )
    doc = await deal.payment()
    assert (doc["paid_fen"], doc["pending_fen"], doc["room_fen"]) == (0, 0, 4000)
    assert await deal.published("payments.payment_received") == []
    [rejected] = await deal.published("payments.remittance_rejected")  # the enterprise is told why
    assert (rejected["remittance_id"], rejected["amount_fen"], rejected["reason"]) == (
        wrong,
        4000,
        "未查询到该笔到账",
    )
    assert (rejected["enterprise_id"], rejected["order_no"]) == (deal.enterprise.org_id, deal.order_no)
    assert (await deal.remit(4000)).status_code == 201


async def test_finance_sees_the_transfers_to_verify_with_counts_by_state(deal_factory) -> None:
    deal = await deal_factory()
    a = await deal.remitted(400)
    await deal.remitted(400)
    await deal.decide(a)
    r = await deal.client.get(f"{API}/admin/remittances?state=pending", headers=deal.finance.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1 and body["counts"] == {"pending": 1, "confirmed": 1, "all": 2}
    assert body["items"][0]["enterprise_id"] == deal.enterprise.org_id
    assert body["items"][0]["state_label"] == "待核实"
    row = body["items"][0]  # names, copied when the signing arrived: no call per row
    assert (row["enterprise_name"], row["provider_name"], row["product_name"], row["order_no"]) == (
        "广西某某机械制造有限公司",
        "广西某某科技服务有限公司",
        "数字化转型诊断服务",
        deal.order_no,
    )
    r = await deal.client.get(f"{API}/admin/remittances", headers=deal.provider.headers)
    assert r.status_code == 403


async def test_the_payee_finds_the_transfers_waiting_for_its_confirmation_and_no_one_elses(
    deal_factory,
) -> None:
    deal = await deal_factory()
    a = await deal.remitted(400)
    await deal.remitted(400)
    await deal.decide(a)
    r = await deal.client.get(f"{API}/remittances?state=pending", headers=deal.provider.headers)
    assert r.status_code == 200
    assert r.json()["total"] == 1 and r.json()["counts"] == {"pending": 1, "confirmed": 1, "all": 2}
    mine = await deal.client.get(f"{API}/remittances", headers=deal.enterprise.headers)
    assert mine.json()["total"] == 2
    for stranger in (deal.other_provider, deal.other_enterprise):
        r = await deal.client.get(f"{API}/remittances", headers=stranger.headers)
        assert r.status_code == 200 and r.json()["total"] == 0
    r = await deal.client.get(f"{API}/remittances", headers=deal.finance.headers)
    assert r.status_code == 403 and r.json()["code"] == "member_required"


@pytest.mark.parametrize("amount", LOOSE_AMOUNTS)
async def test_an_amount_that_is_not_a_json_integer_is_a_422_naming_it_and_records_nothing(
    deal_factory, amount
) -> None:
    """`amount_fen: true` once recorded a 1-fen transfer; "500" and 1000.0 were taken too."""
    deal = await deal_factory()
    r = await deal.remit(amount)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": "amount_fen", "message": "应为整数"}
    assert r.json()["detail"].startswith("金额：")
    assert await deal.rows("SELECT id FROM remittances WHERE order_id = :o") == []


async def test_without_the_payees_account_nothing_can_be_remitted_yet(deal_factory) -> None:
    deal = await deal_factory(bank_account=False)
    doc = await deal.payment()
    assert doc["payee"] is None and doc["actions"] == []  # 支付 is not offered without a payee
    r = await deal.remit(800)
    assert r.status_code == 409 and r.json()["code"] == "payee_account_missing"


async def test_a_contract_with_nothing_to_pay_is_settled_at_signing_and_publishes_nothing(
    deal_factory,
) -> None:
    deal = await deal_factory(subsidy_fen=5000, deposit_fen=0)
    doc = await deal.payment()
    assert (doc["payable_fen"], doc["state"], doc["fully_paid"], doc["payable_upper"]) == (
        0,
        "closed",
        True,
        "零元整",
    )
    r = await deal.remit(1)
    assert r.status_code == 409 and r.json()["code"] == "already_fully_paid"
    assert await deal.published("payments.payment_received") == []


async def test_a_remittance_before_the_contract_is_signed_is_a_409_saying_so_and_records_nothing(
    deal_factory,
) -> None:
    deal = await deal_factory(signed=False)
    early = await deal.remit(800)
    assert early.status_code == 409 and early.json()["code"] == "contract_not_signed"
    assert "合同" in early.json()["detail"]
    # payments knows no order before its contract is signed: any order id without a plan gets
    # this same answer, so it tells no one whether an order exists
    unknown = await deal.client.post(
        f"{API}/orders/{uuid.uuid4()}/remittances",
        json={"amount_fen": 800, "bank_reference": "BR-unknown", "payer_account": "6222..."},
        headers={**deal.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (409, "contract_not_signed")
    await deal.h.publish(deal.signed(), aggregate_id=deal.order_id, sequence=1)
    await deal.h.settle()
    assert (await deal.payment())["remittances"] == []
    assert (await deal.remit(800)).status_code == 201
