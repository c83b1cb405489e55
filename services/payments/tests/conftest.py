"""payments' service tests: its real runtime (PostgreSQL, inbox consumer, outbox relay) in the
saga harness, over RabbitMQ and over the in-process transport, with a fake identity for the
file checks. The other services' events are published as they would publish them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from common.events import BankAccountChanged, ContractSigned, OrderCompleted
from common.testing.saga import FakeFile, SagaHarness, fake_identity
from common.testing.tokens import Caller
from payments.invariants import broken

API = "/api/v1"
ENTERPRISE_NAME = "广西某某机械制造有限公司"
PROVIDER_NAME = "广西某某科技服务有限公司"
PRODUCT_NAME = "数字化转型诊断服务"


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Deal:
    """One signed contract between an enterprise and a provider, as payments sees it."""

    h: SagaHarness
    files: dict[str, FakeFile]
    order_id: str
    enterprise: Caller
    provider: Caller
    finance: Caller
    other_enterprise: Caller
    other_provider: Caller
    total_fen: int = 5000
    subsidy_fen: int = 1000
    deposit_fen: int = 800
    order_no: str = "ORD240813170835637"
    keys: list[str] = field(default_factory=list)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.h.client("payments")

    @property
    def payable_fen(self) -> int:
        return self.total_fen - self.subsidy_fen

    def signed(self, **changes: Any) -> ContractSigned:
        values: dict[str, Any] = {
            "order_id": self.order_id,
            "contract_id": f"contract-{self.order_id}",
            "enterprise_id": self.enterprise.org_id,
            "provider_id": self.provider.org_id,
            "total_fen": self.total_fen,
            "subsidy_fen": self.subsidy_fen,
            "payable_fen": self.payable_fen,
            "deposit_fen": self.deposit_fen,
            "balance_fen": self.payable_fen - self.deposit_fen,
            "order_no": self.order_no,
            "enterprise_name": ENTERPRISE_NAME,
            "provider_name": PROVIDER_NAME,
            "product_name": PRODUCT_NAME,
        }
        values.update(changes)
        return ContractSigned(**values)

    def completed(self) -> OrderCompleted:
        return OrderCompleted(
            order_id=self.order_id,
            order_no=self.order_no,
            enterprise_id=str(self.enterprise.org_id),
            provider_id=str(self.provider.org_id),
            product_id="product-1",
            contract_id=f"contract-{self.order_id}",
            subsidy_fen=self.subsidy_fen,
            total_fen=self.total_fen,
        )

    def file(self, owner: Caller, name: str = "凭证.pdf") -> str:
        file_id = str(uuid.uuid4())
        self.files[file_id] = FakeFile(file_id, str(owner.org_id), name=name)
        return file_id

    async def payment(self, who: Caller | None = None) -> dict[str, Any]:
        r = await self.client.get(
            f"{API}/orders/{self.order_id}/payment", headers=(who or self.enterprise).headers
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def remit(
        self, amount_fen: int, *, who: Caller | None = None, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        key = key or str(uuid.uuid4())
        self.keys.append(key)
        body = {"amount_fen": amount_fen, "bank_reference": f"BR-{key[:40]}", "payer_account": "6222..."}
        body.update(extra)
        return await self.client.post(
            f"{API}/orders/{self.order_id}/remittances",
            json=body,
            headers={**(who or self.enterprise).headers, "Idempotency-Key": key},
        )

    async def remitted(self, amount_fen: int, **extra: Any) -> str:
        r = await self.remit(amount_fen, **extra)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def decide(
        self, remittance_id: str, action: str = "confirm", who: Caller | None = None, **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"{API}/remittances/{remittance_id}/{action}",
            json=body or None,
            headers=(who or self.provider).headers,
        )

    async def confirmed(self, amount_fen: int) -> str:
        remittance_id = await self.remitted(amount_fen)
        r = await self.decide(remittance_id)
        assert r.status_code == 200, r.text
        return remittance_id

    async def published(self, event_type: str) -> list[dict[str, Any]]:
        """The payloads payments put in its outbox for this order, in sequence order."""
        async with self.h.db("payments").session() as s:
            rows = await s.execute(
                text("SELECT body FROM outbox WHERE event_type = :t AND aggregate_id = :a ORDER BY sequence"),
                {"t": event_type, "a": self.order_id},
            )
            return [row.body["payload"] for row in rows]

    async def settlement(self, who: Caller | None = None) -> dict[str, Any] | None:
        r = await self.client.get(f"{API}/me/settlements", headers=(who or self.provider).headers)
        assert r.status_code == 200, r.text
        mine = [s for s in r.json()["items"] if s["order_id"] == self.order_id]
        return mine[0] if mine else None

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        async with self.h.db("payments").session() as s:
            result = await s.execute(text(sql), {"o": self.order_id})
            return [dict(r._mapping) for r in result]


@pytest_asyncio.fixture
async def deal_factory(
    saga: Callable[..., Awaitable[SagaHarness]],
) -> AsyncIterator[Callable[..., Awaitable[Deal]]]:
    """``deal = await deal_factory()``: payments running, the provider's account announced and,
    unless ``signed=False``, the contract signed (payable 40元 = 50元 - 10元 subsidy, deposit 8元:
    the manual's 8.4 screen)."""

    harness: list[tuple[SagaHarness, dict[str, FakeFile]]] = []

    async def make(*, signed: bool = True, bank_account: bool = True, **figures: Any) -> Deal:
        # One harness per test, however many deals: on RabbitMQ two harnesses would share the
        # test's queue names and split each other's events.
        if not harness:
            identity, made = fake_identity()
            harness.append((await saga("payments", peers={"identity": identity}), made))
        h, files = harness[0]
        issuer = h.issuer
        deal = Deal(
            h=h,
            files=files,
            order_id=str(uuid.uuid4()),
            enterprise=issuer.member(caps=("enterprise",)),
            provider=issuer.member(caps=("enterprise", "provider")),
            finance=issuer.staff("finance"),
            other_enterprise=issuer.member(caps=("enterprise",)),
            other_provider=issuer.member(caps=("enterprise", "provider")),
            **figures,
        )
        if bank_account:
            await h.publish(
                account(str(deal.provider.org_id)), aggregate_id=str(deal.provider.org_id), sequence=1
            )
        if signed:
            await h.publish(deal.signed(), aggregate_id=deal.order_id, sequence=1)
        await h.settle()
        return deal

    yield make
    # Whatever a test did, payments' invariants hold once the saga is quiet.
    for h, _files in harness:
        await h.settle()
        async with h.db("payments").session() as session:
            assert await broken(session) == []


def account(org_id: str, number: str = "45050160360600000001") -> BankAccountChanged:
    return BankAccountChanged(
        org_id=org_id,
        account_name="广西某某科技服务有限公司",
        bank_name="中国建设银行",
        bank_region="广西壮族自治区 南宁市",
        branch_name="南宁民族大道支行",
        account_number=number,
    )
