"""catalog's internal reads: a product for orders and quota, the portal figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.auth import issue_service_token
from common.reads import PortalStats, ProductFacts
from common.settings import DEV_SERVICE_TOKEN_SECRET

if TYPE_CHECKING:
    from conftest import Catalog

pytestmark = pytest.mark.broker


def service() -> dict[str, str]:
    """A service token made when the request is: one made at import lives 300 s, less than a
    long run takes to reach these tests."""
    return {"Authorization": f"Bearer {issue_service_token(DEV_SERVICE_TOKEN_SECRET, 'orders')}"}


async def test_orders_reads_a_products_current_facts_and_its_providers_contact(catalog: Catalog) -> None:
    """The provider's contact (服务机构联系人 and its service hotline) is what orders keeps on an
    order for the enterprise to reach it (双方接洽)."""
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    r = await catalog.client.get(f"/internal/products/{product['id']}", headers=service())
    assert r.json() == {
        "id": product["id"],
        "name": "专利分级评价",
        "category": "数字化转型",
        "provider_id": provider.org_id,
        "provider_name": "广西测试科技服务有限公司",
        "provider_contact_name": "李四",
        "provider_contact_phone": "13812346433",
        "platform_price_fen": 7600,
        "market_price_fen": 8000,
        "max_subsidy_fen": 13800,
        "status": "listed",
        "listed": True,
        "provider_suspended": False,
    }
    # the contract orders and quota parse it with: every field, none lost or added
    assert ProductFacts.model_validate(r.json()).model_dump(mode="json") == r.json()
    await catalog.suspend(provider.org_id or "")
    r = await catalog.client.get(f"/internal/products/{product['id']}", headers=service())
    assert r.json()["provider_suspended"] is True
    assert (await catalog.client.get("/internal/products/nothing", headers=service())).status_code == 404


async def test_internal_reads_need_a_service_token(catalog: Catalog) -> None:
    r = await catalog.client.get("/internal/stats")
    assert r.status_code == 401 and r.json()["code"] == "service_token_required"
    r = await catalog.client.get("/internal/stats", headers=catalog.reviewer.headers)
    assert r.status_code == 401


async def test_the_portal_counts_listed_products_of_active_providers(catalog: Catalog) -> None:
    provider = await catalog.provider()
    await catalog.listed(provider)
    await catalog.listed(provider, name="企业诊断")
    await catalog.create(provider, name="草稿")
    answer = (await catalog.client.get("/internal/stats", headers=service())).json()
    assert answer == {"products": 2}
    # the contract the gateway parses it with: every figure, none lost or added
    assert PortalStats.model_validate(answer).model_dump(mode="json") == answer
    await catalog.suspend(provider.org_id or "")
    assert (await catalog.client.get("/internal/stats", headers=service())).json() == {"products": 0}
