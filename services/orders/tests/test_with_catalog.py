"""orders with the real catalog and quota services: the product as catalog sells it at the
moment of submission (price, category, provider, listed: orders' copy of catalog's snapshot,
or catalog itself when the copy cannot say yes), the subsidy as quota quotes it, and
catalog's 申请次数 follows the submissions; an unlisted product or one's own is refused."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest

from common.events import OrganizationCertified
from common.internal import ServiceClients, unavailable
from common.logging import configure_logging
from common.testing.saga import FakeFile, fake_identity
from quota.domain.campaigns import campaign_spec
from quota.service.campaigns import put_campaign
from quota.testing import Quota

YUAN = 100  # fen per yuan


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


async def test_an_order_reads_the_product_from_catalog_and_the_subsidy_from_quota_at_submission(
    saga, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity_app, files = fake_identity()
    h = await saga("catalog", "quota", "orders", peers={"identity": identity_app})
    cat, orders = h.client("catalog"), h.client("orders")
    reviewer = h.issuer.staff("reviewer")
    q = Quota(h, files, {})
    async with q.db.transaction() as s:
        await put_campaign(s, q.year, campaign_spec(q.year))

    # a provider onboarded by catalog, with one listed product (专利分级评价, 76元, 最高补贴 138元)
    provider = h.issuer.member(caps=("enterprise", "provider"))
    proof = f"f-{uuid.uuid4().hex[:8]}"
    files[proof] = FakeFile(proof, provider.org_id or "")
    r = await cat.post(
        "/api/v1/me/provider-application",
        headers=provider.headers,
        json={
            "name": "广西示范科技服务有限公司",
            "profile": "专注制造业数字化转型服务",
            "categories": ["数字化转型"],
            "contact_name": "李四",
            "contact_phone": "13812346433",
            "address": "南宁市青秀区民族大道 100 号",
            "working_hours": "周一至周五 08:00:00-18:00:00",
            "proof_file_ids": [proof],
        },
    )
    assert r.status_code == 201, r.text
    r = await cat.post(
        f"/api/v1/admin/provider-applications/{r.json()['id']}/approve", json={}, headers=reviewer.headers
    )
    assert r.status_code == 200, r.text

    async def listed(**changes: Any) -> str:
        body = {
            "name": "专利分级评价",
            "category": "数字化转型",
            "description": "对企业专利进行分级评价",
            "deliverables": "专利分级评价报告一份",
            "acceptance_criteria": "企业确认报告",
            "market_price_fen": 80 * YUAN,
            "platform_price_fen": 76 * YUAN,
            "max_subsidy_fen": 138 * YUAN,
            **changes,
        }
        r = await cat.post("/api/v1/me/products", json=body, headers=provider.headers)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert (
            await cat.post(f"/api/v1/me/products/{pid}/submit", headers=provider.headers)
        ).status_code == 200
        r = await cat.post(f"/api/v1/admin/products/{pid}/approve", json={}, headers=reviewer.headers)
        assert r.status_code == 200, r.text
        return str(pid)

    product = await listed()
    enterprise = await q.certified(name="广西示范制造有限公司")
    org = enterprise.org_id or ""
    await h.publish(
        OrganizationCertified(
            org_id=org, name="广西示范制造有限公司", uscc="91450100MA5L0DEM0X", kind="enterprise"
        ),
        aggregate_id=org,
        sequence=1,
    )
    await q.voucher(org, 50_000 * YUAN)
    await h.settle()

    async def submit(who: Any, pid: str) -> Any:
        return await orders.post(
            "/api/v1/orders",
            json={"product_id": pid, "use_voucher": True},
            headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())},
        )

    r = await submit(enterprise, product)
    assert r.status_code == 201, r.text
    order = r.json()
    # 平台销售价 76元 -> 券后价 38元 (the manual's product page)
    assert (order["amount_fen"], order["subsidy_fen"], order["payable_fen"]) == (
        76 * YUAN,
        38 * YUAN,
        38 * YUAN,
    )
    assert order["provider_name"] == "广西示范科技服务有限公司" and order["payable_upper"] == "叁拾捌元整"
    await h.settle()
    seen = (await orders.get(f"/api/v1/orders/{order['id']}", headers=enterprise.headers)).json()
    assert seen["status"] == "awaiting_acceptance" and seen["subsidy_fen"] == 38 * YUAN
    # the provider's contact and service hotline as catalog published them (双方接洽)
    assert seen["contacts"]["provider"] == {"name": "李四", "phone": "13812346433"}

    detail = (await cat.get(f"/api/v1/products/{product}")).json()
    assert detail["applications"] == 1  # 申请次数 follows orders.order_submitted

    # catalog away: a listed product is still sold, from orders' copy of catalog's snapshot
    # (catalog.product_changed), with the provider's card as catalog last published it; a
    # product orders has no copy of is asked of catalog, which answers 503 while away
    asked: list[str] = []

    async def catalog_away(self: ServiceClients, name: str, path: str, **params: Any) -> Any:
        if name == "catalog":
            asked.append(path)
            raise unavailable("catalog")
        return await real_get_json(self, name, path, **params)

    real_get_json = ServiceClients.get_json
    r = await cat.put(
        "/api/v1/me/provider-profile",
        headers=provider.headers,
        json={
            "profile": "专注制造业数字化转型服务",
            "categories": ["数字化转型"],
            "contact_name": "王五",
            "contact_phone": "13812340000",
            "address": "南宁市青秀区民族大道 100 号",
            "working_hours": "周一至周五 08:00:00-18:00:00",
        },
    )
    assert r.status_code == 200, r.text
    await h.settle()
    monkeypatch.setattr(ServiceClients, "get_json", catalog_away)
    r = await submit(enterprise, product)
    assert r.status_code == 201, r.text
    assert r.json()["amount_fen"] == 76 * YUAN and r.json()["provider_name"] == "广西示范科技服务有限公司"
    seen = (await orders.get(f"/api/v1/orders/{r.json()['id']}", headers=enterprise.headers)).json()
    assert seen["contacts"]["provider"] == {"name": "王五", "phone": "13812340000"}
    assert asked == []
    r = await submit(enterprise, str(uuid.uuid4()))
    assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable"
    assert len(asked) == 1
    monkeypatch.undo()

    # the provider's own product, and a product it unlisted, cannot be ordered (once orders
    # has heard of the unlisting: its copy lags catalog by the event's flight)
    r = await submit(provider, product)
    assert r.status_code == 409 and r.json()["code"] == "own_product"
    assert (
        await cat.post(f"/api/v1/me/products/{product}/unlist", headers=provider.headers)
    ).status_code == 200
    await h.settle()
    r = await submit(enterprise, product)
    assert r.status_code == 409 and r.json()["code"] == "product_not_listed"
