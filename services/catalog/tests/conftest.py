"""catalog on real PostgreSQL + RabbitMQ (the saga harness), with fakes of identity's file
endpoint and quota's quote as its peers, and the steps most tests start from.

``catalog.identity`` holds identity's organisation reads while its ``gate`` is closed (a slow
identity): ``catalog.identity.gate = asyncio.Event()``, ``await catalog.identity.arrived.get()``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, HTTPException
from sqlalchemy import text

from common.events import OrganizationCertified, OrganizationRestored, OrganizationSuspended
from common.testing.saga import FakeFile, Hold, SagaHarness, fake_identity, known_org
from common.testing.tokens import Caller


@pytest.fixture
def transport_kind() -> str:
    """The real broker; ``CATALOG_TESTS_TRANSPORT=inprocess`` runs the same tests on the
    in-process bus (same outbox, inbox and handlers) when no broker can be had."""
    return os.environ.get("CATALOG_TESTS_TRANSPORT", "rabbitmq")


@dataclass
class FakeQuota:
    """quota's ``GET /internal/quote``: a quote per enterprise, or down (500)."""

    app: FastAPI
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    calls: list[dict[str, str]] = field(default_factory=list)


def fake_quota() -> FakeQuota:
    app = FastAPI()
    fake = FakeQuota(app)

    @app.get("/internal/quote")
    async def quote(
        enterprise_id: str, provider_id: str, category: str, price_fen: int, max_subsidy_fen: int
    ) -> Any:
        fake.calls.append({"enterprise_id": enterprise_id, "category": category, "price_fen": str(price_fen)})
        if fake.down:
            raise HTTPException(500)
        q = fake.quotes.get(enterprise_id)
        if q is None:
            raise HTTPException(404)
        # What quota applies: min(ratio × price, product max, remaining).
        subsidy = min(price_fen * q["ratio_bp"] // 10_000, max_subsidy_fen, q["remaining_fen"])
        return {**q, "subsidy_fen": subsidy}

    return fake


GENERAL_QUOTE = {
    "voucher_id": "v-1",
    "voucher_no": "SVC240913101010001",
    "voucher_type": "general",
    "ratio_bp": 5000,
    "remaining_fen": 10_000_000,
    "valid_from": "2024-09-13",
    "valid_to": "2024-12-31",
}


def product_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "专利分级评价",
        "category": "数字化转型",
        "description": "对企业专利进行分级评价，出具评价报告",
        "deliverables": "专利分级评价报告一份",
        "acceptance_criteria": "企业确认报告并签署验收单",
        "market_price_fen": 8000,
        "platform_price_fen": 7600,
        "max_subsidy_fen": 13800,
    }
    body.update(overrides)
    return body


class Catalog:
    """The running service and the steps tests build on (all through the public API)."""

    product_body = staticmethod(product_body)
    GENERAL_QUOTE = GENERAL_QUOTE

    def __init__(self, h: SagaHarness, files: dict[str, FakeFile], quota: FakeQuota, identity: Hold) -> None:
        self.h = h
        self.files = files
        self.quota = quota
        self.identity = identity  # identity's organisation reads (GET /internal/organizations/{id})
        self.client: httpx.AsyncClient = h.client("catalog")
        self.reviewer = h.issuer.staff("reviewer")

    def enterprise(self, org_id: str | None = None) -> Caller:
        return self.h.issuer.member(org_id or str(uuid.uuid4()), caps=("enterprise",))

    def file_of(self, org_id: str) -> str:
        file_id = f"f-{uuid.uuid4().hex[:8]}"
        self.files[file_id] = FakeFile(file_id, org_id)
        return file_id

    def application(self, caller: Caller, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "广西测试科技服务有限公司",
            "profile": "专注制造业数字化转型服务",
            "categories": ["数字化转型", "企业诊断"],
            "contact_name": "李四",
            "contact_phone": "13812346433",
            "address": "南宁市青秀区民族大道 100 号",
            "working_hours": "周一至周五 08:00:00-18:00:00",
            "proof_file_ids": [self.file_of(caller.org_id or "")],
        }
        body.update(overrides)
        return body

    async def apply(self, caller: Caller, **overrides: Any) -> httpx.Response:
        return await self.client.post(
            "/api/v1/me/provider-application",
            json=self.application(caller, **overrides),
            headers=caller.headers,
        )

    async def provider(self, name: str = "广西测试科技服务有限公司") -> Caller:
        """An approved provider (its token still without the capability: catalog decides)."""
        caller = self.enterprise()
        r = await self.apply(caller, name=name)
        assert r.status_code == 201, r.text
        r = await self.client.post(
            f"/api/v1/admin/provider-applications/{r.json()['id']}/approve",
            json={},
            headers=self.reviewer.headers,
        )
        assert r.status_code == 200, r.text
        return caller

    async def create(self, provider: Caller, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/api/v1/me/products", json=product_body(**overrides), headers=provider.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def listed(self, provider: Caller, **overrides: Any) -> dict[str, Any]:
        product = await self.create(provider, **overrides)
        r = await self.client.post(f"/api/v1/me/products/{product['id']}/submit", headers=provider.headers)
        assert r.status_code == 200, r.text
        r = await self.client.post(
            f"/api/v1/admin/products/{product['id']}/approve", json={}, headers=self.reviewer.headers
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def suspend(self, org_id: str, sequence: int = 1) -> None:
        org = known_org(self.h.peers["identity"], org_id)
        if org is not None:  # identity suspended it: it says so when asked
            org.suspended, org.suspended_reason = True, "违规"
        await self.h.publish(
            OrganizationSuspended(org_id=org_id, reason="违规"), aggregate_id=org_id, sequence=sequence
        )
        await self.h.settle()

    async def restore(self, org_id: str, sequence: int = 2) -> None:
        org = known_org(self.h.peers["identity"], org_id)
        if org is not None:
            org.suspended, org.suspended_reason = False, None
        await self.h.publish(
            OrganizationRestored(org_id=org_id, reason="整改完成"), aggregate_id=org_id, sequence=sequence
        )
        await self.h.settle()

    async def certify(self, org_id: str, name: str) -> None:
        await self.h.publish(
            OrganizationCertified(org_id=org_id, name=name, uscc="91450100MA5L0TEST", kind="enterprise"),
            aggregate_id=org_id,
        )
        await self.h.settle()

    async def sql(self, query: str, **params: Any) -> list[Any]:
        async with self.h.db("catalog").transaction() as s:
            result = await s.execute(text(query), params)
            return list(result.all()) if result.returns_rows else []

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        rows = await self.sql(
            "SELECT body FROM outbox WHERE event_type = :t ORDER BY created_at, sequence", t=event_type
        )
        return [r[0]["payload"] for r in rows]


@pytest_asyncio.fixture
async def catalog(saga: Callable[..., Awaitable[SagaHarness]]) -> Catalog:
    identity_app, files = fake_identity()
    identity = Hold()
    identity.on(identity_app, "/internal/organizations/")
    quota = fake_quota()
    h = await saga("catalog", peers={"identity": identity_app, "quota": quota.app})
    return Catalog(h, files, quota, identity)
