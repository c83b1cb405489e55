"""demands' service tests: its real runtime (PostgreSQL, inbox consumer, outbox relay) in the
saga harness, with a fake identity for the organisations and files it reads. In-process by
default; the tests that prove the event flow run on RabbitMQ too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from demands.cli import broken
from fastapi import FastAPI

from common.testing.saga import FakeFile, SagaHarness, fake_identity, known_org
from common.testing.tokens import Caller

API = "/api/v1"


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


@dataclass
class World:
    """demands running, with callers as identity would sign them."""

    h: SagaHarness
    identity: FastAPI
    files: dict[str, FakeFile]
    enterprise: Caller
    colleague: Caller  # an agent of the same enterprise
    other_enterprise: Caller
    provider: Caller
    other_provider: Caller
    reviewer: Caller
    finance: Caller
    admin: Caller
    made: list[str] = field(default_factory=list)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.h.client("demands")

    async def call(self, method: str, path: str, who: Caller | None = None, **kwargs: Any) -> httpx.Response:
        headers = who.headers if who else {}
        return await self.client.request(method, f"{API}{path}", headers=headers, **kwargs)

    def demand_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "植物提取厂房设计",
            "category": "技术创新",
            "budget_mode": "fixed",
            "budget_fen": 5_000_000,
            "content": "新建植物提取生产线厂房，需要工艺布局与厂房设计方案。",
        }
        body.update(changes)
        return body

    async def submitted(self, who: Caller | None = None, **changes: Any) -> dict[str, Any]:
        r = await self.call("POST", "/me/demands", who or self.enterprise, json=self.demand_body(**changes))
        assert r.status_code == 201, r.text
        self.made.append(r.json()["id"])
        return r.json()

    async def published(self, who: Caller | None = None, **changes: Any) -> dict[str, Any]:
        demand = await self.submitted(who, **changes)
        r = await self.call("POST", f"/admin/demands/{demand['id']}/approve", self.reviewer)
        assert r.status_code == 200, r.text
        return r.json()

    async def respond(self, demand_id: str, who: Caller | None = None, **changes: Any) -> httpx.Response:
        body = {
            "contact_name": "李经理",
            "phone": "13912345678",
            "message": "我司有同类厂房设计经验，可上门沟通。",
        }
        body.update(changes)
        return await self.call("POST", f"/demands/{demand_id}/responses", who or self.provider, json=body)

    def name_org(self, who: Caller, name: str) -> None:
        org = known_org(self.identity, str(who.org_id))
        assert org is not None
        org.name = name


@pytest_asyncio.fixture
async def world(saga: Callable[..., Awaitable[SagaHarness]]) -> AsyncIterator[World]:
    identity, files = fake_identity()
    h = await saga("demands", peers={"identity": identity})
    issuer = h.issuer
    enterprise_org = str(uuid.uuid4())
    w = World(
        h=h,
        identity=identity,
        files=files,
        enterprise=issuer.caller(
            role="owner", org_id=enterprise_org, caps=("enterprise",), phone="13812346433"
        ),
        colleague=issuer.caller(
            role="agent", org_id=enterprise_org, caps=("enterprise",), phone="13700000001"
        ),
        other_enterprise=issuer.caller(
            role="owner", org_id=str(uuid.uuid4()), caps=("enterprise",), phone="13600000002"
        ),
        provider=issuer.caller(
            role="owner", org_id=str(uuid.uuid4()), caps=("enterprise", "provider"), phone="13500000003"
        ),
        other_provider=issuer.caller(
            role="owner", org_id=str(uuid.uuid4()), caps=("enterprise", "provider"), phone="13400000004"
        ),
        reviewer=issuer.staff("reviewer"),
        finance=issuer.staff("finance"),
        admin=issuer.staff("administrator"),
    )
    w.name_org(w.enterprise, "广西北软软件股份有限公司")
    w.name_org(w.provider, "广西科智信息服务有限公司")
    w.name_org(w.other_provider, "南宁某某咨询有限公司")
    w.name_org(w.other_enterprise, "柳州某某机械有限公司")
    yield w
    # Whatever a test did, demands' invariants hold once the saga is quiet.
    await h.settle()
    assert await broken(h.db("demands").url) == []
