"""orders's test world: the real orders service in the saga harness (real PostgreSQL, the
real broker or the in-process bus), catalog's and quota's internal reads answered by small
fake apps, and the other services' events published as their relays would.

    w = await world()                       # orders + fakes, an enterprise and a provider
    order = await w.submit()                # POST /orders -> pending_voucher
    await w.reserved(order)                 # quota.voucher_reserved (sequence per source)
    await w.settle()
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, HTTPException, Query
from sqlalchemy import text

from common.events import (
    ContractSigned,
    ContractTerminated,
    ContractVoided,
    EventPayload,
    OrganizationCertified,
    OrganizationSuspended,
    PaymentReceived,
    ProviderApproved,
    SettlementPaid,
    VoucherDeducted,
    VoucherReleased,
    VoucherReservationRejected,
    VoucherReserved,
    VoucherReversed,
)
from common.testing.saga import Hold, SagaHarness, fake_identity
from common.testing.tokens import Caller

YUAN = 100


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- fakes of catalog's and quota's internal reads ---------------------------------------------


@dataclass
class FakeCatalog:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    app: FastAPI = field(default_factory=FastAPI)
    # while set and not yet open, every product read waits for it (a slow catalog), and says
    # so on ``arrived``
    gate: asyncio.Event | None = None
    arrived: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        @self.app.get("/internal/products/{product_id}")
        async def product(product_id: str) -> dict[str, Any]:
            if self.gate is not None:
                self.arrived.put_nowait(product_id)
                await self.gate.wait()
            if product_id not in self.products:
                raise HTTPException(404)
            return self.products[product_id]

    def add(
        self,
        provider_id: str,
        *,
        price_fen: int = 300_000 * YUAN,
        max_subsidy_fen: int = 150_000 * YUAN,
        category: str = "数字化转型",
        name: str = "小微企业智慧产销管理系统",
        **extra: Any,
    ) -> str:
        pid = str(uuid.uuid4())
        self.products[pid] = {
            "id": pid,
            "name": name,
            "category": category,
            "provider_id": provider_id,
            "provider_name": "广西示范科技服务有限公司",
            # 服务机构联系人 and its service hotline (服务电话), as catalog shows them publicly
            "provider_contact_name": "李四",
            "provider_contact_phone": "0771-5551234",
            "platform_price_fen": price_fen,
            "market_price_fen": price_fen + 4 * YUAN,
            "max_subsidy_fen": max_subsidy_fen,
            "status": "listed",
            "listed": True,
            "provider_suspended": False,
            **extra,
        }
        return pid


@dataclass
class FakeQuota:
    """``/internal/quote``: min(ratio × price, product max, remaining) of the enterprise's voucher."""

    vouchers: dict[str, dict[str, Any]] = field(default_factory=dict)  # enterprise id -> voucher
    app: FastAPI = field(default_factory=FastAPI)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        @self.app.get("/internal/quote")
        async def quote(
            enterprise_id: str = Query(),
            provider_id: str = Query(),
            category: str = Query(),
            price_fen: int = Query(),
            max_subsidy_fen: int = Query(),
        ) -> dict[str, Any]:
            self.calls.append({"enterprise_id": enterprise_id, "price_fen": price_fen, "category": category})
            v = self.vouchers.get(enterprise_id)
            if v is None:
                raise HTTPException(404)
            subsidy = min(price_fen * v["ratio_bp"] // 10_000, max_subsidy_fen, v["remaining_fen"])
            return {**v, "subsidy_fen": subsidy}

    def give(
        self, enterprise_id: str, remaining_fen: int = 90_000 * YUAN, ratio_bp: int = 3000
    ) -> dict[str, Any]:
        v = {
            "voucher_id": str(uuid.uuid4()),
            "voucher_no": "SVC240913095302922",
            "voucher_type": "general",
            "ratio_bp": ratio_bp,
            "remaining_fen": remaining_fen,
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
        }
        self.vouchers[enterprise_id] = v
        return v


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    h: SagaHarness
    catalog: FakeCatalog
    quota: FakeQuota
    enterprise: Caller
    provider: Caller
    product_id: str
    identity: Hold  # identity's organisation reads (GET /internal/organizations/{id})
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def api(self) -> httpx.AsyncClient:
        return self.h.client("orders")

    async def settle(self) -> None:
        await self.h.settle()

    # people
    async def submit(
        self,
        *,
        use_voucher: bool = True,
        who: Caller | None = None,
        product_id: str | None = None,
        key: str | None = None,
        expect: int = 201,
    ) -> dict[str, Any]:
        r = await self.api.post(
            "/api/v1/orders",
            json={"product_id": product_id or self.product_id, "use_voucher": use_voucher},
            headers={**(who or self.enterprise).headers, "Idempotency-Key": key or str(uuid.uuid4())},
        )
        assert r.status_code == expect, r.text
        return r.json()

    async def post(
        self, order: dict[str, Any] | str, action: str, who: Caller, json: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        oid = order if isinstance(order, str) else order["id"]
        r = await self.api.post(f"/api/v1/orders/{oid}/{action}", json=json, headers=who.headers)
        assert r.status_code == expect, r.text
        return r.json()

    async def get(
        self, order: dict[str, Any] | str, who: Caller | None = None, expect: int = 200
    ) -> dict[str, Any]:
        oid = order if isinstance(order, str) else order["id"]
        r = await self.api.get(f"/api/v1/orders/{oid}", headers=(who or self.enterprise).headers)
        assert r.status_code == expect, r.text
        return r.json()

    # other services' events, each source numbering its events per order as its outbox would
    async def emit(
        self,
        payload: EventPayload,
        aggregate_id: str,
        *,
        twice: bool = False,
        sequence: int | None = None,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        source = payload.event_type.split(".", 1)[0]
        if sequence is None:
            sequence = self.seqs.get((source, aggregate_id), 0) + 1
        self.seqs[(source, aggregate_id)] = max(sequence, self.seqs.get((source, aggregate_id), 0))
        doc = await self.h.publish(
            payload, aggregate_id=aggregate_id, sequence=sequence, occurred_at=occurred_at
        )
        if twice:
            await self.h.redeliver(doc)
        return doc

    def reserved_event(self, order: dict[str, Any], amount_fen: int | None = None) -> VoucherReserved:
        v = self.quota.vouchers[self.enterprise.org_id or ""]
        return VoucherReserved(
            order_id=order["id"],
            voucher_id=v["voucher_id"],
            voucher_no=v["voucher_no"],
            amount_fen=order["subsidy_fen"] if amount_fen is None else amount_fen,
            ratio_bp=v["ratio_bp"],
            remaining_fen=0,
        )

    async def reserved(
        self, order: dict[str, Any], amount_fen: int | None = None, **kw: Any
    ) -> dict[str, Any]:
        return await self.emit(self.reserved_event(order, amount_fen), order["id"], **kw)

    async def rejected(self, order: dict[str, Any], code: str = "nothing_left", **kw: Any) -> dict[str, Any]:
        return await self.emit(
            VoucherReservationRejected(
                order_id=order["id"],
                voucher_id=order["voucher_id"],
                reason_code=code,
                reason="服务券余额不足",
            ),
            order["id"],
            **kw,
        )

    def signed_event(self, order: dict[str, Any], total: int, subsidy: int, deposit: int) -> ContractSigned:
        return ContractSigned(
            order_id=order["id"],
            contract_id=f"contract-{order['id'][:8]}",
            enterprise_id=self.enterprise.org_id or "",
            provider_id=self.provider.org_id or "",
            total_fen=total,
            subsidy_fen=subsidy,
            payable_fen=total - subsidy,
            deposit_fen=deposit,
            balance_fen=total - subsidy - deposit,
        )

    async def signed(
        self, order: dict[str, Any], total: int, subsidy: int, deposit: int, **kw: Any
    ) -> dict[str, Any]:
        return await self.emit(self.signed_event(order, total, subsidy, deposit), order["id"], **kw)

    async def voided(self, order: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.emit(
            ContractVoided(order_id=order["id"], contract_id=None, reason="企业取消订单，合同作废"),
            order["id"],
            **kw,
        )

    async def terminated(self, order: dict[str, Any], by: str = "administrator", **kw: Any) -> dict[str, Any]:
        return await self.emit(
            ContractTerminated(
                order_id=order["id"],
                contract_id=f"contract-{order['id'][:8]}",
                reason="合同纠纷",
                terminated_by=by,
            ),
            order["id"],
            **kw,
        )

    def payment_event(
        self,
        order: dict[str, Any],
        amount: int,
        paid: int,
        payable: int,
        deposit: int,
        remittance: str | None = None,
    ) -> PaymentReceived:
        return PaymentReceived(
            order_id=order["id"],
            remittance_id=remittance or str(uuid.uuid4()),
            amount_fen=amount,
            paid_fen=paid,
            outstanding_fen=payable - paid,
            deposit_met=paid >= deposit,
            fully_paid=paid >= payable,
        )

    async def paid(
        self, order: dict[str, Any], amount: int, paid: int, payable: int, deposit: int, **kw: Any
    ) -> dict[str, Any]:
        return await self.emit(self.payment_event(order, amount, paid, payable, deposit), order["id"], **kw)

    def deducted_event(self, order: dict[str, Any], amount: int, released: int = 0) -> VoucherDeducted:
        return VoucherDeducted(
            order_id=order["id"], voucher_id=order["voucher_id"], amount_fen=amount, released_fen=released
        )

    def released_event(self, order: dict[str, Any], amount: int) -> VoucherReleased:
        return VoucherReleased(order_id=order["id"], voucher_id=order["voucher_id"], amount_fen=amount)

    def reversed_event(self, order: dict[str, Any], amount: int, refused: bool = False) -> VoucherReversed:
        return VoucherReversed(
            order_id=order["id"], voucher_id=order["voucher_id"], amount_fen=amount, refused=refused
        )

    def settlement_event(self, order: dict[str, Any], amount: int) -> SettlementPaid:
        return SettlementPaid(
            order_id=order["id"],
            settlement_id=str(uuid.uuid4()),
            provider_id=self.provider.org_id or "",
            amount_fen=amount,
            payout_reference="PAY-1",
        )

    async def suspend(self, org_id: str) -> None:
        await self.emit(OrganizationSuspended(org_id=org_id, reason="违规经营"), org_id)

    # what orders published
    async def published(self, order_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        async with self.h.db("orders").session() as s:
            rows = (
                await s.execute(
                    text(
                        "SELECT event_type, body FROM outbox WHERE (CAST(:o AS text) IS NULL "
                        "OR aggregate_id = CAST(:o AS text)) ORDER BY sequence, created_at"
                    ),
                    {"o": order_id},
                )
            ).all()
        return [(r.event_type, r.body["payload"]) for r in rows]

    async def published_types(self, order_id: str) -> list[str]:
        return [t for t, _ in await self.published(order_id)]


@pytest_asyncio.fixture
async def world(
    saga: Callable[..., Awaitable[SagaHarness]],
) -> AsyncIterator[Callable[..., Awaitable[World]]]:
    async def make(overrides: dict[str, Any] | None = None, *, also: tuple[str, ...] = ()) -> World:
        """orders (and the real services named in ``also``) with fake catalog, quota, identity."""
        catalog, quota = FakeCatalog(), FakeQuota()
        identity_app, _files = fake_identity()
        identity = Hold()
        identity.on(identity_app, "/internal/organizations/")
        h = await saga(
            "orders",
            *also,
            peers={"catalog": catalog.app, "quota": quota.app, "identity": identity_app},
            overrides={"orders": overrides or {}},
        )
        # the signed-in account identity names in its token: the enterprise's contact on an order
        enterprise = h.issuer.member(caps=("enterprise",), name="张三", phone="13912345678")
        provider = h.issuer.member(caps=("provider",))
        w = World(h, catalog, quota, enterprise, provider, catalog.add(provider.org_id or ""), identity)
        await w.emit(
            OrganizationCertified(
                org_id=enterprise.org_id or "",
                name="广西示范制造有限公司",
                uscc="91450100MA5L0DEM0X",
                kind="enterprise",
            ),
            enterprise.org_id or "",
        )
        await w.emit(
            ProviderApproved(org_id=provider.org_id or "", name="广西示范科技服务有限公司"),
            provider.org_id or "",
        )
        quota.give(enterprise.org_id or "")
        await h.settle()
        return w

    yield make
