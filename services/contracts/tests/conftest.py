"""Contracts on the saga harness: the real runtime (PostgreSQL, inbox, outbox, relay) on the real
broker or the in-process transport; orders' and payments' events published as those services
would; identity's verification tokens made by the test issuer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from common.events import (
    CancellationRequested,
    OrderAccepted,
    OrganizationCertified,
    OrganizationSuspended,
    PaymentReceived,
    ProviderApproved,
    SettlementPaid,
)
from common.testing.saga import SagaHarness
from common.testing.tokens import Caller

API = "/api/v1"


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Deal:
    """One accepted order between a certified enterprise and a provider, and its contract."""

    h: SagaHarness
    enterprise: Caller
    provider: Caller
    order_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    contract_id: str = ""
    seq: int = 1  # the last orders sequence used for this order
    payments_sequence: int = 10  # payments' events of this order (after its payment facts)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.h.client("contracts")

    async def accept(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "order_id": self.order_id,
            "order_no": "ORD261201220000" + str(uuid.uuid4().int % 1000).zfill(3),
            "enterprise_id": self.enterprise.org_id,
            "enterprise_name": "广西测试制造有限公司",
            "provider_id": self.provider.org_id,
            "provider_name": "南宁数字化服务中心",
            "product_id": str(uuid.uuid4()),
            "product_name": "企业数字化诊断服务",
            "category": "数字化转型",
            "price_fen": 30_000_000,
            "subsidy_reserved_fen": 9_000_000,
            "ratio_bp": 5000,
            "max_subsidy_fen": 9_000_000,
            "voucher_id": str(uuid.uuid4()),
        }
        values.update(overrides)
        self.seq += 1
        doc = await self.h.publish(OrderAccepted(**values), aggregate_id=self.order_id, sequence=self.seq)
        return doc

    async def contract(self, who: Caller | None = None) -> httpx.Response:
        return await self.client.get(
            f"{API}/orders/{self.order_id}/contract", headers=(who or self.enterprise).headers
        )

    async def drafted(self, **overrides: Any) -> dict[str, Any]:
        await self.accept(**overrides)
        got = await self.h.eventually(self._contract_json, what="the draft")
        self.contract_id = got["id"]
        return got

    async def _contract_json(self) -> dict[str, Any] | None:
        r = await self.contract()
        return r.json() if r.status_code == 200 else None

    async def put(
        self,
        total_fen: int = 30_000_000,
        deposit_fen: int = 6_000_000,
        terms: str = "第一条 服务内容：企业数字化诊断。",
        who: Caller | None = None,
    ) -> httpx.Response:
        return await self.client.put(
            f"{API}/contracts/{self.contract_id}",
            json={"total_fen": total_fen, "deposit_fen": deposit_fen, "terms": terms},
            headers=(who or self.provider).headers,
        )

    async def act(self, action: str, who: Caller, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(
            f"{API}/contracts/{self.contract_id}/{action}", json=body, headers=who.headers
        )

    async def agreed(self, **put: Any) -> dict[str, Any]:
        await self.drafted()
        assert (await self.put(**put)).status_code == 200
        assert (await self.act("submit", self.provider)).status_code == 200
        r = await self.act("agree", self.enterprise)
        assert r.status_code == 200, r.text
        return r.json()

    async def seal(self, who: Caller) -> httpx.Response:
        token = self.h.issuer.idv(who, purpose="seal")
        return await self.client.post(
            f"{API}/me/seal", json={"verification_token": token}, headers=who.headers
        )

    async def sign(self, who: Caller, token: str | None = None) -> httpx.Response:
        token = token or self.h.issuer.idv(who, purpose="sign_contract", object_id=self.contract_id)
        return await self.act("sign", who, {"verification_token": token})

    async def request_cancellation(
        self, *, terminate_if_signed: bool = False, requested_by: str = "enterprise"
    ) -> dict[str, Any]:
        self.seq += 1
        return await self.h.publish(
            CancellationRequested(
                order_id=self.order_id,
                reason="企业取消订单",
                requested_by=requested_by,
                terminate_if_signed=terminate_if_signed,
            ),
            aggregate_id=self.order_id,
            sequence=self.seq,
        )

    async def paid(self, amount_fen: int, seq: int = 1) -> None:
        await self.h.publish(
            PaymentReceived(
                order_id=self.order_id,
                remittance_id=str(uuid.uuid4()),
                amount_fen=amount_fen,
                paid_fen=amount_fen,
                outstanding_fen=0,
                deposit_met=True,
                fully_paid=False,
            ),
            aggregate_id=self.order_id,
            sequence=seq,
        )

    async def settled(self, seq: int = 2) -> None:
        await self.h.publish(
            SettlementPaid(
                order_id=self.order_id,
                settlement_id=str(uuid.uuid4()),
                provider_id=str(self.provider.org_id),
                amount_fen=9_000_000,
                payout_reference="PAY-1",
            ),
            aggregate_id=self.order_id,
            sequence=seq,
        )

    def payments_seq(self) -> int:
        self.payments_sequence += 1
        return self.payments_sequence

    def another(self) -> Deal:
        """Another order between the same two organisations."""
        return Deal(self.h, self.enterprise, self.provider)

    def with_unannounced_provider(self) -> Deal:
        """An order of the same enterprise with a provider whose certification and onboarding
        have not reached contracts yet (its token already says so)."""
        return Deal(self.h, self.enterprise, self.h.issuer.member(caps=("enterprise", "provider")))

    async def announce(self, who: Caller, name: str) -> None:
        """The provider's certification and onboarding events arrive."""
        await certify(self.h, who, name)
        await approve_provider(self.h, who, name)
        await self.h.settle()

    async def signed(self) -> dict[str, Any]:
        """Agreed, both seals made (once per organisation), both signed."""
        await self.agreed()
        for who in (self.enterprise, self.provider):
            r = await self.seal(who)
            assert r.status_code in (201, 409), r.text
        assert (await self.sign(self.enterprise)).status_code == 200
        r = await self.sign(self.provider)
        assert r.status_code == 200, r.text
        return r.json()

    async def suspend(self, who: Caller, seq: int = 2) -> None:
        await suspend(self.h, who, seq)
        await self.h.settle()

    async def events(self, *, notices: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """What contracts published for this order (its outbox), oldest first; the facts of
        the steps before the signing, published for the people who act next (demands' notices,
        the contract's buttons on orders' rows), only with ``notices`` (the saga's tests look
        at what the other services act on)."""
        async with self.h.db("contracts").session() as s:
            rows = (
                await s.execute(
                    text("SELECT event_type, body FROM outbox WHERE aggregate_id = :a ORDER BY sequence"),
                    {"a": self.order_id},
                )
            ).all()
        return [(r[0], r[1]["payload"]) for r in rows if notices or r[0] not in NOTICE_FACTS]


NOTICE_FACTS = (
    "contracts.contract_submitted",
    "contracts.contract_returned",
    "contracts.contract_agreed",
    "contracts.contract_party_signed",
)


async def certify(h: SagaHarness, who: Caller, name: str) -> None:
    await h.publish(
        OrganizationCertified(
            org_id=str(who.org_id), name=name, uscc="91450100MA5XXXXXX1", kind="enterprise"
        ),
        aggregate_id=str(who.org_id),
    )


async def approve_provider(h: SagaHarness, who: Caller, name: str) -> None:
    await h.publish(ProviderApproved(org_id=str(who.org_id), name=name), aggregate_id=str(who.org_id))


async def suspend(h: SagaHarness, who: Caller, seq: int = 2) -> None:
    await h.publish(
        OrganizationSuspended(org_id=str(who.org_id), reason="违规"),
        aggregate_id=str(who.org_id),
        sequence=seq,
    )


@pytest_asyncio.fixture
async def deal(saga: Callable[..., Awaitable[SagaHarness]]) -> Deal:
    h = await saga("contracts")
    enterprise = h.issuer.member(caps=("enterprise",))
    provider = h.issuer.member(caps=("enterprise", "provider"))
    await certify(h, enterprise, "广西测试制造有限公司")
    await certify(h, provider, "南宁数字化服务中心")
    await approve_provider(h, provider, "南宁数字化服务中心")
    await h.settle()
    return Deal(h, enterprise, provider)
