"""The seventh service end to end (issue 13), every service its own process behind the
gateway: a demand published, returned, edited, approved, on the public board with the phone
masked, answered by a provider (我要对接), seen in full by the enterprise and closed; a message
and its reply; and ``/portal/stats`` with the demands service stopped answers with what it has
and marks demands stale. The stop comes last: the module shares one platform."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common.testing.plugin import require_broker

from .conftest import Platform
from .journey import Journey, Org, eventually, expect, platform_for_module

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(600)]


@pytest_asyncio.fixture(scope="module")
async def platform(
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    url = require_broker(amqp_url_or_none, request)
    tmp = Path(tmp_path_factory.mktemp("platform"))
    # The portal figures are cached briefly; a second here, so the stopped service shows at once.
    async with platform_for_module(postgres_server, url, tmp, {"GATEWAY_STATS_CACHE_SECONDS": "1"}) as p:
        yield p


@pytest_asyncio.fixture
async def j(platform: Platform) -> AsyncIterator[Journey]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield await Journey.start(platform, client)


DEMAND = {
    "name": "植物提取厂房设计",
    "category": "技术创新",
    "budget_mode": "fixed",
    "budget_fen": 5_000_000,
    "content": "新建植物提取生产线厂房，需要工艺布局与厂房设计方案。",
}


async def test_a_demand_from_publication_to_a_provider_s_call_and_closing(j: Journey) -> None:
    enterprise = await j.organisation("广西北软软件股份有限公司")
    provider = await j.provider("广西科智信息服务有限公司")
    phone = enterprise.session.phone

    demand = expect(await j.post("/me/demands", enterprise, DEMAND), 201)
    assert demand["status_label"] == "待处理" and demand["contact_phone"] == phone
    assert demand["org_name"] == "广西北软软件股份有限公司"
    did = demand["id"]

    assert expect(await j.get(f"/admin/demands/{did}", j.reviewer))["status_label"] == "待审核"
    returned = expect(await j.post(f"/admin/demands/{did}/return", j.reviewer, {"reason": "请补充厂房面积"}))
    assert returned["status_label"] == "退回修改"
    mine = expect(await j.get("/me/demands", enterprise))
    assert mine["counts"]["returned"] == 1 and mine["items"][0]["review_reason"] == "请补充厂房面积"
    edited = expect(
        await j.put(f"/me/demands/{did}", enterprise, {**DEMAND, "content": "厂房面积约 3000 平方米。"})
    )
    assert edited["status_label"] == "待处理"
    approved = expect(await j.post(f"/admin/demands/{did}/approve", j.reviewer))
    assert approved["status_label"] == "已发布" and approved["published_at_text"] != "--"

    board = expect(await j.get("/demands", category="技术创新"))  # public: no token
    shown = next(d for d in board["items"] if d["id"] == did)
    assert shown["phone"] == f"{phone[:3]}****{phone[-4:]}" and phone not in str(board)
    assert shown["response_label"] == "目前已有0家服务机构申请对接"

    answer = {"contact_name": "李经理", "phone": "13912345678", "message": "我司有同类厂房设计经验。"}
    expect(await j.post(f"/demands/{did}/responses", provider, answer), 201)
    again = await j.post(f"/demands/{did}/responses", provider, answer)
    assert again.status_code == 409 and again.json()["code"] == "already_responded"
    own = await j.post(f"/demands/{did}/responses", enterprise, answer)
    assert own.status_code == 403 and own.json()["code"] == "provider_required"
    assert expect(await j.get(f"/demands/{did}"))["response_label"] == "目前已有1家服务机构申请对接"

    responses = expect(await j.get(f"/me/demands/{did}/responses", enterprise))
    assert [(r["provider_name"], r["phone"]) for r in responses["items"]] == [
        ("广西科智信息服务有限公司", "13912345678")
    ]
    other = await j.get(f"/me/demands/{did}/responses", provider)
    assert other.status_code == 404

    closed = expect(await j.post(f"/me/demands/{did}/close", enterprise))
    assert closed["status_label"] == "关闭需求"
    assert did not in [d["id"] for d in expect(await j.get("/demands"))["items"]]
    late = await j.post(f"/demands/{did}/responses", provider, answer)
    assert late.status_code == 409 and late.json()["code"] == "demand_closed"

    audit = expect(await j.get("/admin/audit-log", j.admin, service="demands", page_size=100))
    mine = [e["action"] for e in audit["items"] if e["target_id"] == did]
    assert sorted(mine) == ["demand.approve", "demand.open", "demand.return"]


async def test_a_message_and_its_reply(j: Journey) -> None:
    enterprise = await j.organisation("广西示范留言有限公司")
    written = expect(await j.post("/me/messages", enterprise, {"content": "服务券过期后能否延期？"}), 201)
    listing = expect(await j.get("/admin/messages", j.finance, status="open"))
    assert written["id"] in [m["id"] for m in listing["items"]]
    expect(await j.post(f"/admin/messages/{written['id']}/reply", j.finance, {"reply": "请在有效期内使用。"}))
    mine = expect(await j.get("/me/messages", enterprise))
    assert mine["items"][0]["reply"] == "请在有效期内使用。" and mine["items"][0]["status_label"] == "已回复"
    refused = await j.post(f"/admin/messages/{written['id']}/reply", enterprise, {"reply": "自己回复"})
    assert refused.status_code == 403


class Stream:
    """A client of GET /me/notifications/stream through the gateway: every event it received."""

    def __init__(self, client: httpx.AsyncClient, who: Org, last_event_id: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.open = asyncio.Event()
        headers = {**who.headers, "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.task = asyncio.create_task(self._read(client, headers))

    async def _read(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        async with client.stream(
            "GET", "/api/v1/me/notifications/stream", headers=headers, timeout=None
        ) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith(
                "text/event-stream"
            )
            self.open.set()
            event_id = None
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:") and event_id is not None:
                    self.ids.append(event_id)
                    self.events.append(json.loads(line[5:]))

    def kinds(self, order_id: str) -> list[str]:
        return [e["kind"] for e in self.events if order_id in e["link"]]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def order_notices(j: Journey, who: Org, order_id: str, order_no: str = "") -> list[dict[str, Any]]:
    """The notices of one order (its link, or its number for a settlement's), oldest first."""
    items = expect(await j.get("/me/notifications", who, page_size=100))["items"]
    return [n for n in reversed(items) if order_id in n["link"] or (order_no and order_no in n["body"])]


PROVIDER_HEARS = [
    "order_awaiting_acceptance",
    "contract_returned",  # the journey's enterprise returns the first draft
    "contract_to_sign",
    "remittance_recorded",
    "remittance_recorded",
    "remittance_recorded",
    "settlement_claimable",
    "settlement_approved",
    "settlement_paid",
]
ENTERPRISE_HEARS = [
    "contract_submitted",
    "contract_submitted",
    "contract_to_sign",
    "contract_signed",
    "remittance_confirmed",
    "remittance_confirmed",
    "service_started",
    "service_completed",
    "remittance_confirmed",
]


async def test_the_order_journey_notifies_each_party_in_order_once_each_also_live(j: Journey) -> None:
    enterprise, provider, order, _paid = await j.settled_order()
    oid, number = order["id"], order["order_no"]
    await eventually(
        lambda: order_notices(j, provider, oid, number),
        lambda got: [n["kind"] for n in got] == PROVIDER_HEARS,
        "the provider's notices of the order",
    )
    got = await order_notices(j, enterprise, oid, number)
    assert [n["kind"] for n in got] == ENTERPRISE_HEARS, [n["kind"] for n in got]
    assert all(n["read"] is False for n in got)
    # Nobody else hears of it.
    stranger = await j.organisation("广西旁观者有限公司")
    assert await order_notices(j, stranger, oid, number) == []

    # Read one, then all: the unread count follows.
    before = expect(await j.get("/me/notifications", enterprise))["unread"]
    expect(await j.post(f"/me/notifications/{got[0]['id']}/read", enterprise))
    assert expect(await j.get("/me/notifications", enterprise))["unread"] == before - 1
    expect(await j.post("/me/notifications/read-all", enterprise))
    assert expect(await j.get("/me/notifications", enterprise))["unread"] == 0


async def test_a_provider_sees_a_new_order_live_over_the_stream_and_resumes_after(j: Journey) -> None:
    provider = await j.provider("广西实时通知科技有限公司")
    product = await j.product(provider)
    enterprise, _voucher = await j.enterprise_with_voucher("广西实时下单制造有限公司")
    live = Stream(j.client, provider)
    await asyncio.wait_for(live.open.wait(), 30)
    order = await j.order(enterprise, product["id"])
    oid = order["id"]
    await eventually(
        lambda: asyncio.sleep(0, live.kinds(oid)), lambda k: k == ["order_awaiting_acceptance"], "live"
    )
    first_id = live.ids[-1]
    await live.close()

    # Away while a second order comes: on return, Last-Event-ID gives what was missed, once.
    second = await j.order(enterprise, product["id"])
    await eventually(
        lambda: order_notices(j, provider, second["id"]),
        lambda got: len(got) == 1,
        "the second order's notice",
    )
    back = Stream(j.client, provider, last_event_id=first_id)
    await asyncio.wait_for(back.open.wait(), 30)
    await eventually(lambda: asyncio.sleep(0, back.events), lambda e: len(e) >= 1, "the resumed stream")
    await asyncio.sleep(1)  # anything more would be a duplicate or someone else's
    await back.close()
    assert [e["kind"] for e in back.events] == ["order_awaiting_acceptance"]
    assert second["id"] in back.events[0]["link"] and int(back.ids[0]) > int(first_id)


async def test_portal_stats_count_demands_and_survive_demands_stopping(
    j: Journey, platform: Platform
) -> None:
    """Last in the module: it stops the demands process."""
    stats = await eventually(
        lambda: j.get("/portal/stats"), lambda r: r.status_code == 200 and r.json()["stale"] == [], "stats"
    )
    known = stats.json()
    assert isinstance(known["published_demands"], int)
    # A browser holds a notification stream open: the stop still ends within its grace period.
    watcher = await j.organisation("广西停机观察有限公司")
    live = Stream(j.client, watcher)
    await asyncio.wait_for(live.open.wait(), 30)
    platform.processes.procs["demands"].terminate()
    platform.processes.procs["demands"].wait(timeout=30)
    await live.close()
    after = await eventually(
        lambda: j.get("/portal/stats"),
        lambda r: r.status_code == 200 and "demands" in r.json()["stale"],
        "stale",
    )
    body = after.json()
    # What it has: every other figure fresh, demands' last known one kept and marked stale.
    assert body["stale"] == ["demands"] and body["published_demands"] == known["published_demands"]
    assert body["enterprises"] >= 1 and body["enterprises"] >= known["enterprises"]
