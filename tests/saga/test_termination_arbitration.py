"""Termination against payout (DESIGN.md "Termination"): payments owns money paid out, so
payments decides, in one database with the payout, whether a termination may happen.

Contracts and payments run for real (PostgreSQL, inbox, outbox, relay) on RabbitMQ and on the
in-process transport; orders' events (and orders' own agreement to a termination, which it
gives while the service is not complete) are published as orders would. Each test holds one
part back (payments' relay, payments' consumer, contracts' consumer) at the moment the
issue's review did, lets the rest go on, then releases it: whichever of the two decisions
payments takes first wins, and the other is refused. Never both, even when orders agreed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from common.events import (
    BankAccountChanged,
    OrderAccepted,
    OrderCompleted,
    OrderTerminationAgreed,
    OrganizationCertified,
    ProviderApproved,
    ServiceCompleted,
)
from common.testing.saga import FakeFile, SagaHarness, fake_identity
from common.testing.tokens import Caller

API = "/api/v1"
TOTAL, SUBSIDY, DEPOSIT = 30_000_000, 9_000_000, 6_000_000


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- holding one part back -----------------------------------------------------------------------


@asynccontextmanager
async def relay_held(h: SagaHarness, service: str) -> AsyncIterator[None]:
    """``service``'s relay publishes nothing inside the block (its outbox keeps the rows)."""
    relay = h[service].runtime.relay
    real = relay.run_once

    async def held() -> int:
        return 0

    relay.run_once = held  # type: ignore[method-assign]
    try:
        yield
    finally:
        relay.run_once = real  # type: ignore[method-assign]
        relay.nudge()


@asynccontextmanager
async def consumer_held(h: SagaHarness, service: str) -> AsyncIterator[None]:
    """``service`` applies no event inside the block: deliveries wait for the release."""
    consumer = h[service].runtime.consumer
    assert consumer is not None
    gate = asyncio.Event()
    real = dict(consumer.handlers)

    def waiting(handler: Any) -> Any:
        async def run(session: Any, event: Any) -> None:
            await gate.wait()
            await handler(session, event)

        return run

    consumer.handlers.update({t: waiting(fn) for t, fn in real.items()})
    try:
        yield
    finally:
        consumer.handlers.update(real)
        gate.set()


# --- one deal, signed in contracts, planned and completed in payments ----------------------------


@dataclass
class Deal:
    h: SagaHarness
    files: dict[str, FakeFile]
    enterprise: Caller
    provider: Caller
    finance: Caller
    admin: Caller
    order_id: str
    contract_id: str = ""
    settlement_id: str = ""
    orders_sequence: int = 10

    def client(self, service: str) -> httpx.AsyncClient:
        return self.h.client(service)

    async def contract(self) -> dict[str, Any]:
        r = await self.client("contracts").get(
            f"{API}/orders/{self.order_id}/contract", headers=self.admin.headers
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def claim(self) -> dict[str, Any]:
        r = await self.client("payments").get(f"{API}/me/settlements", headers=self.provider.headers)
        assert r.status_code == 200, r.text
        return next(s for s in r.json()["items"] if s["order_id"] == self.order_id)

    async def payment(self) -> dict[str, Any]:
        r = await self.client("payments").get(
            f"{API}/orders/{self.order_id}/payment", headers=self.enterprise.headers
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def file(self, name: str) -> str:
        file_id = str(uuid.uuid4())
        self.files[file_id] = FakeFile(file_id, str(self.provider.org_id), name=name)
        return file_id

    async def terminate(self, reason: str = "服务纠纷") -> httpx.Response:
        """Staff ask; orders agrees (as it does while the service is not complete, or before
        it has heard of the completion), so payments' answer decides."""
        r = await self.client("contracts").post(
            f"{API}/admin/contracts/{self.contract_id}/terminate",
            json={"reason": reason},
            headers=self.admin.headers,
        )
        if r.status_code == 202:
            self.orders_sequence += 1
            await self.h.publish(
                OrderTerminationAgreed(
                    order_id=self.order_id,
                    contract_id=self.contract_id,
                    request_id=r.json()["termination_request_id"],
                ),
                aggregate_id=self.order_id,
                sequence=self.orders_sequence,
            )
        return r

    async def pay_out(self) -> httpx.Response:
        return await self.client("payments").post(
            f"{API}/admin/settlements/{self.settlement_id}/pay",
            json={"payout_reference": "DF2024120001"},
            headers=self.finance.headers,
        )

    async def contract_events(self) -> list[str]:
        async with self.h.db("contracts").session() as s:
            rows = await s.execute(
                text("SELECT event_type FROM outbox WHERE aggregate_id = :a ORDER BY sequence"),
                {"a": self.order_id},
            )
            return [r[0] for r in rows]


async def sign(h: SagaHarness, d: Deal) -> None:
    contracts = h.client("contracts")
    await h.publish(
        OrderAccepted(
            order_id=d.order_id,
            order_no="ORD" + str(uuid.uuid4().int)[:15],
            enterprise_id=str(d.enterprise.org_id),
            enterprise_name="广西测试制造有限公司",
            provider_id=str(d.provider.org_id),
            provider_name="南宁数字化服务中心",
            product_id=str(uuid.uuid4()),
            product_name="企业数字化诊断服务",
            category="数字化转型",
            price_fen=TOTAL,
            subsidy_reserved_fen=SUBSIDY,
            ratio_bp=5000,
            max_subsidy_fen=SUBSIDY,
            voucher_id=str(uuid.uuid4()),
        ),
        aggregate_id=d.order_id,
        sequence=2,
    )

    async def drafted() -> dict[str, Any] | None:
        r = await contracts.get(f"{API}/orders/{d.order_id}/contract", headers=d.enterprise.headers)
        return r.json() if r.status_code == 200 else None

    d.contract_id = (await h.eventually(drafted, what="the draft"))["id"]
    base = f"{API}/contracts/{d.contract_id}"
    body = {"total_fen": TOTAL, "deposit_fen": DEPOSIT, "terms": "第一条 服务内容：企业数字化诊断。"}
    assert (await contracts.put(base, json=body, headers=d.provider.headers)).status_code == 200
    assert (await contracts.post(f"{base}/submit", headers=d.provider.headers)).status_code == 200
    assert (await contracts.post(f"{base}/agree", headers=d.enterprise.headers)).status_code == 200
    for who in (d.enterprise, d.provider):
        seal = h.issuer.idv(who, purpose="seal")
        r = await contracts.post(f"{API}/me/seal", json={"verification_token": seal}, headers=who.headers)
        assert r.status_code in (201, 409), r.text
        token = h.issuer.idv(who, purpose="sign_contract", object_id=d.contract_id)
        r = await contracts.post(f"{base}/sign", json={"verification_token": token}, headers=who.headers)
        assert r.status_code == 200, r.text


async def paid_and_completed(h: SagaHarness, d: Deal) -> None:
    """The enterprise pays everything, the service is complete, the provider claims and
    finance approves: the claim waits for its payout."""
    payments = h.client("payments")
    plan = await h.eventually(lambda: _plan(d), what="the payment plan")
    r = await payments.post(
        f"{API}/orders/{d.order_id}/remittances",
        json={"amount_fen": plan["payable_fen"], "bank_reference": "BR-1", "payer_account": "6222..."},
        headers={**d.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    r = await payments.post(f"{API}/remittances/{r.json()['id']}/confirm", headers=d.provider.headers)
    assert r.status_code == 200, r.text
    parties = {"enterprise_id": str(d.enterprise.org_id), "provider_id": str(d.provider.org_id)}
    await h.publish(ServiceCompleted(order_id=d.order_id, **parties), aggregate_id=d.order_id, sequence=5)
    await h.publish(
        OrderCompleted(
            order_id=d.order_id,
            order_no="",
            product_id="product-1",
            contract_id=d.contract_id,
            subsidy_fen=SUBSIDY,
            total_fen=TOTAL,
            **parties,
        ),
        aggregate_id=d.order_id,
        sequence=6,
    )
    claim = await h.eventually(lambda: _claim(d), what="the settlement claim")
    d.settlement_id = claim["id"]
    documents = {
        "invoice_file_ids": [d.file("发票.pdf")],
        "receipt_file_ids": [d.file("到账回单.pdf")],
        "proof_file_ids": [d.file("服务完成确认单.pdf")],
    }
    r = await payments.post(
        f"{API}/settlements/{d.settlement_id}/claim", json=documents, headers=d.provider.headers
    )
    assert r.status_code == 200, r.text
    r = await payments.post(f"{API}/admin/settlements/{d.settlement_id}/approve", headers=d.finance.headers)
    assert r.status_code == 200, r.text


async def _plan(d: Deal) -> dict[str, Any] | None:
    r = await d.client("payments").get(f"{API}/orders/{d.order_id}/payment", headers=d.enterprise.headers)
    return r.json() if r.status_code == 200 else None


async def _claim(d: Deal) -> dict[str, Any] | None:
    r = await d.client("payments").get(f"{API}/me/settlements", headers=d.provider.headers)
    return next((s for s in r.json()["items"] if s["order_id"] == d.order_id), None)


@pytest_asyncio.fixture
async def deal(saga: Callable[..., Awaitable[SagaHarness]]) -> Deal:
    identity, files = fake_identity()
    h = await saga("contracts", "payments", peers={"identity": identity})
    enterprise = h.issuer.member(caps=("enterprise",))
    provider = h.issuer.member(caps=("enterprise", "provider"))
    for who, name in ((enterprise, "广西测试制造有限公司"), (provider, "南宁数字化服务中心")):
        await h.publish(
            OrganizationCertified(
                org_id=str(who.org_id), name=name, uscc="91450100MA5XXXXXX1", kind="enterprise"
            ),
            aggregate_id=str(who.org_id),
        )
    await h.publish(
        ProviderApproved(org_id=str(provider.org_id), name="南宁数字化服务中心"),
        aggregate_id=str(provider.org_id),
    )
    await h.publish(
        BankAccountChanged(
            org_id=str(provider.org_id),
            account_name="南宁数字化服务中心",
            bank_name="中国建设银行",
            bank_region="广西壮族自治区 南宁市",
            branch_name="南宁民族大道支行",
            account_number="45050160360600000001",
        ),
        aggregate_id=str(provider.org_id),
    )
    d = Deal(
        h,
        files,
        enterprise,
        provider,
        h.issuer.staff("finance"),
        h.issuer.staff("administrator"),
        str(uuid.uuid4()),
    )
    await h.settle()
    await sign(h, d)
    await h.settle()
    return d


@pytest_asyncio.fixture
async def claimed(deal: Deal) -> Deal:
    """Paid in full, served, claimed and approved: the claim waits for its payout."""
    await paid_and_completed(deal.h, deal)
    await deal.h.settle()
    return deal


async def the_payout_stands_and_the_termination_was_refused(d: Deal) -> None:
    await d.h.settle()
    contract = await d.contract()
    assert contract["state"] == "signed", contract
    assert contract["termination_refused_reason"], contract
    assert (await d.claim())["state"] == "paid"
    assert "contracts.contract_terminated" not in await d.contract_events()
    assert (await d.payment())["state"] != "terminated"


# --- the three lags of the review ------------------------------------------------------------------


async def test_a_payout_payments_has_not_announced_yet_still_refuses_the_termination(claimed: Deal) -> None:
    deal = claimed
    h = deal.h
    async with relay_held(h, "payments"):
        r = await deal.pay_out()
        assert r.status_code == 200, r.text
        r = await deal.terminate()
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "terminating"
        await asyncio.sleep(0.3)
        assert (await deal.contract())["state"] in ("terminating", "signed")
    await the_payout_stands_and_the_termination_was_refused(deal)


async def test_a_termination_payments_has_not_heard_yet_waits_and_the_payout_decides(claimed: Deal) -> None:
    deal = claimed
    h = deal.h
    async with consumer_held(h, "payments"):
        r = await deal.terminate()
        assert r.status_code == 202, r.text
        r = await deal.pay_out()  # payments decides: nothing stops this payout yet
        assert r.status_code == 200, r.text
    await the_payout_stands_and_the_termination_was_refused(deal)


async def test_contracts_not_knowing_of_the_payout_asks_payments_which_refuses(claimed: Deal) -> None:
    deal = claimed
    h = deal.h
    async with consumer_held(h, "contracts"):
        r = await deal.pay_out()
        assert r.status_code == 200, r.text
        r = await deal.terminate()
        assert r.status_code == 202, r.text
    await the_payout_stands_and_the_termination_was_refused(deal)


async def test_payments_refuses_a_served_order_even_when_orders_agreed(deal: Deal) -> None:
    parties = {"enterprise_id": str(deal.enterprise.org_id), "provider_id": str(deal.provider.org_id)}
    await deal.h.publish(
        ServiceCompleted(order_id=deal.order_id, **parties), aggregate_id=deal.order_id, sequence=5
    )
    await deal.h.settle()
    r = await deal.terminate()
    assert r.status_code == 202, r.text
    await deal.h.settle()
    contract = await deal.contract()
    assert contract["state"] == "signed"
    assert "服务已完成" in contract["termination_refused_reason"], contract
    assert "contracts.contract_terminated" not in await deal.contract_events()


async def test_a_termination_accepted_first_leaves_nothing_to_pay_out_and_refunds_what_was_paid(
    deal: Deal,
) -> None:
    h = deal.h
    plan = await h.eventually(lambda: _plan(deal), what="the payment plan")
    payments = h.client("payments")
    r = await payments.post(
        f"{API}/orders/{deal.order_id}/remittances",
        json={"amount_fen": DEPOSIT, "bank_reference": "BR-1", "payer_account": "6222..."},
        headers={**deal.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert (
        await payments.post(f"{API}/remittances/{r.json()['id']}/confirm", headers=deal.provider.headers)
    ).status_code == 200
    r = await deal.terminate("服务机构无法履约")
    assert r.status_code == 202 and r.json()["state"] == "terminating", r.text
    await h.settle()
    contract = await deal.contract()
    assert contract["state"] == "terminated" and contract["terminate_reason"] == "服务机构无法履约"
    payment = await deal.payment()
    assert payment["state"] == "terminated" and plan["payable_fen"] == TOTAL - SUBSIDY
    assert [(f["amount_fen"], f["state"]) for f in payment["refunds"]] == [(DEPOSIT, "due")]
    # orders, lagging, completed the service after the termination was decided: no claim can
    # be paid, and staff see the conflict in payments' audit log
    parties = {"enterprise_id": str(deal.enterprise.org_id), "provider_id": str(deal.provider.org_id)}
    await h.publish(
        ServiceCompleted(order_id=deal.order_id, **parties), aggregate_id=deal.order_id, sequence=5
    )
    await h.settle()
    async with h.db("payments").session() as s:
        rows = (
            await s.execute(text("SELECT action, target_id FROM audit_log WHERE action LIKE 'conflict.%'"))
        ).all()
    assert [tuple(r) for r in rows] == [("conflict.service_completed_after_termination", deal.order_id)]
