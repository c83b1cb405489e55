"""A payment's notices end to end: the real payments and demands, joined by RabbitMQ (and by the
in-process bus). Payments publishes in its transactions; demands tells the person who must act
next; a redelivery of payments' own envelope tells nobody twice."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from common.events import BankAccountChanged, ContractSigned
from common.testing.saga import SagaHarness, fake_identity
from common.testing.tokens import Caller

API = "/api/v1"
ORDER_NO = "ORD240813170835637"


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def notices(h: SagaHarness, who: Caller) -> list[dict[str, Any]]:
    r = await h.client("demands").get(f"{API}/me/notifications", headers=who.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_a_transfer_tells_the_payee_to_verify_and_the_enterprise_what_became_of_it(saga: Any) -> None:
    identity, _files = fake_identity()
    h: SagaHarness = await saga("payments", "demands", peers={"identity": identity})
    enterprise = h.issuer.member(caps=("enterprise",))
    provider = h.issuer.member(caps=("enterprise", "provider"))
    order_id = str(uuid.uuid4())
    await h.publish(
        BankAccountChanged(
            org_id=str(provider.org_id),
            account_name="广西科智信息服务有限公司",
            bank_name="中国建设银行",
            bank_region="广西壮族自治区 南宁市",
            branch_name="南宁民族大道支行",
            account_number="45050160360600000001",
        ),
        aggregate_id=str(provider.org_id),
    )
    await h.publish(
        ContractSigned(
            order_id=order_id,
            contract_id=f"contract-{order_id}",
            enterprise_id=str(enterprise.org_id),
            provider_id=str(provider.org_id),
            total_fen=5_000,
            subsidy_fen=1_000,
            payable_fen=4_000,
            deposit_fen=800,
            balance_fen=3_200,
            order_no=ORDER_NO,
            product_name="人才培训服务",
        ),
        aggregate_id=order_id,
    )
    await h.settle()
    # Signed: the enterprise is to pay the deposit.
    [to_pay] = await notices(h, enterprise)
    assert to_pay["kind"] == "contract_signed" and "定金 8 元" in to_pay["body"]
    assert to_pay["link"] == f"{API}/orders/{order_id}/payment"

    payments = h.client("payments")

    async def remit(amount_fen: int, reference: str) -> str:
        r = await payments.post(
            f"{API}/orders/{order_id}/remittances",
            json={"amount_fen": amount_fen, "bank_reference": reference, "payer_account": "6222..."},
            headers={**enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    # A transfer recorded: the payee is to verify it.
    wrong = await remit(800, "BR20240813001")
    await h.settle()
    [verify] = await notices(h, provider)
    assert verify["kind"] == "remittance_recorded" and "BR20240813001" in verify["body"]
    # Rejected with a reason: the enterprise hears why.
    r = await payments.post(
        f"{API}/remittances/{wrong}/reject", json={"reason": "未查到该笔到账"}, headers=provider.headers
    )
    assert r.status_code == 200, r.text
    # Recorded again and confirmed: the enterprise hears it arrived.
    right = await remit(800, "BR20240813002")
    await h.settle()
    r = await payments.post(f"{API}/remittances/{right}/confirm", headers=provider.headers)
    assert r.status_code == 200, r.text
    await h.settle()

    assert [n["kind"] for n in await notices(h, enterprise)] == [
        "remittance_confirmed",
        "remittance_rejected",
        "contract_signed",
    ]
    confirmed, rejected, _ = await notices(h, enterprise)
    assert "未查到该笔到账" in rejected["body"]
    assert "已支付 8 元，待支付 32 元" in confirmed["body"]
    assert [n["kind"] for n in await notices(h, provider)] == ["remittance_recorded", "remittance_recorded"]

    # payments' own envelope delivered once more (its relay died before marking it sent):
    # nobody is told twice.
    async with h.db("payments").session() as s:
        body = (
            await s.execute(
                text(
                    "SELECT body FROM outbox WHERE event_type = 'payments.payment_received' AND aggregate_id = :o"
                ),
                {"o": order_id},
            )
        ).scalar_one()
    await h.redeliver(dict(body))
    await h.settle()
    assert len(await notices(h, enterprise)) == 3
