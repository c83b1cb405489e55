"""make run's demo data: the demo provider approved, listed products in every category."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from catalog.seed import seed_demo
from common import demo
from common.categories import CATEGORIES
from common.testing.saga import SagaHarness, fake_identity

pytestmark = pytest.mark.broker


async def test_the_demo_provider_lists_a_product_in_every_category_once(
    saga: Callable[..., Awaitable[SagaHarness]],
) -> None:
    identity_app, _files = fake_identity()
    h = await saga("catalog", overrides={"catalog": {"seed_demo": True}}, peers={"identity": identity_app})
    client = h.client("catalog")
    listing = (await client.get("/api/v1/products?page_size=100")).json()
    assert {p["category"] for p in listing["items"]} == set(CATEGORIES)
    assert {p["provider_name"] for p in listing["items"]} == {demo.PROVIDER.name}
    patent = (await client.get("/api/v1/products?q=专利分级评价")).json()["items"][0]
    assert (patent["market_price_fen"], patent["platform_price_fen"], patent["max_subsidy_fen"]) == (
        8000,
        7600,
        13800,
    )
    detail = (await client.get(f"/api/v1/products/{patent['id']}")).json()
    assert detail["provider"]["phone"] == demo.PROVIDER.phone  # its service hotline, public

    await seed_demo(h["catalog"].runtime)  # a second start changes nothing
    again = (await client.get("/api/v1/products?page_size=100")).json()
    assert again["total"] == listing["total"]
    async with h.db("catalog").session() as s:
        approvals = (
            await s.execute(
                text("SELECT count(*) FROM outbox WHERE event_type = 'catalog.provider_approved'")
            )
        ).scalar_one()
    assert approvals == 1
