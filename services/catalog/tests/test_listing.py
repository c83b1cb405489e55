"""The public portal: 通用券服务 / 设备更新专项券服务, search, sorting, detail, 机构详情,
categories, favourites."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Catalog

pytestmark = pytest.mark.broker


async def names(catalog: Catalog, query: str = "") -> list[str]:
    r = await catalog.client.get(f"/api/v1/products{query}")
    assert r.status_code == 200, r.text
    return [p["name"] for p in r.json()["items"]]


async def three_products(catalog: Catalog) -> tuple[Any, list[dict[str, Any]]]:
    provider = await catalog.provider()
    made = [
        await catalog.listed(provider, name="专利分级评价", market_price_fen=8000, platform_price_fen=7600),
        await catalog.listed(
            provider,
            name="数控机床直接租赁",
            category="直接设备租赁",
            description="五轴数控机床租赁",
            market_price_fen=50_000_000,
            platform_price_fen=48_000_000,
        ),
        await catalog.listed(
            provider,
            name="企业管理诊断",
            category="企业诊断",
            description="全面诊断企业的数字化水平与 ERP 应用",
            market_price_fen=6_000_000,
            platform_price_fen=5_000_000,
        ),
    ]
    return provider, made


async def test_the_listing_filters_by_listing_category_keyword_and_price(catalog: Catalog) -> None:
    await three_products(catalog)
    draft_provider = await catalog.provider(name="草稿机构")
    await catalog.create(draft_provider, name="未上架的专利服务")

    assert set(await names(catalog)) == {"企业管理诊断", "数控机床直接租赁", "专利分级评价"}
    assert set(await names(catalog, "?voucher_type=general")) == {"企业管理诊断", "专利分级评价"}
    assert await names(catalog, "?voucher_type=special") == ["数控机床直接租赁"]
    assert await names(catalog, "?category=企业诊断") == ["企业管理诊断"]
    # Chinese substrings of the name or the description (pg_trgm).
    assert await names(catalog, "?q=专利") == ["专利分级评价"]
    assert await names(catalog, "?q=数字化") == ["企业管理诊断"]
    assert await names(catalog, "?q=erp") == ["企业管理诊断"]  # case-insensitive
    assert await names(catalog, "?q=Er") == ["企业管理诊断"]
    assert await names(catalog, "?q=诊断") == ["企业管理诊断"]  # two characters: the bigram index
    assert await names(catalog, "?q=数控机床") == ["数控机床直接租赁"]  # three and more: pg_trgm
    assert await names(catalog, "?q=五轴") == ["数控机床直接租赁"]  # in the description
    assert await names(catalog, "?q=机") == ["数控机床直接租赁"]  # one character: still a substring
    assert await names(catalog, "?q=%25") == []  # a wildcard is a character like any other
    assert set(await names(catalog, "?min_price_fen=5000000&max_price_fen=48000000")) == {
        "企业管理诊断",
        "数控机床直接租赁",
    }
    page = (await catalog.client.get("/api/v1/products?page=2&page_size=2")).json()
    assert (page["total"], page["page"], page["page_size"], len(page["items"])) == (3, 2, 2, 1)
    beyond = (await catalog.client.get("/api/v1/products?page=5&page_size=2")).json()
    assert (beyond["total"], beyond["items"]) == (3, [])
    full = (await catalog.client.get("/api/v1/products?page_size=2")).json()
    assert (full["total"], len(full["items"])) == (3, 2)
    item = (await catalog.client.get("/api/v1/products?q=专利")).json()["items"][0]
    assert {k: item[k] for k in ("category", "provider_name", "platform_price_fen", "market_price_fen")} == {
        "category": "数字化转型",
        "provider_name": "广西测试科技服务有限公司",
        "platform_price_fen": 7600,
        "market_price_fen": 8000,
    }
    assert (item["sales"], item["revenue_fen"]) == (0, 0)


async def test_the_listing_sorts_by_price_sales_and_revenue_both_ways(catalog: Catalog) -> None:
    _provider, made = await three_products(catalog)
    by_id = {p["name"]: p["id"] for p in made}
    await catalog.sql(
        "UPDATE products SET sales = CASE id WHEN :a THEN 5 WHEN :b THEN 1 ELSE 3 END,"
        " revenue_fen = CASE id WHEN :a THEN 100 WHEN :b THEN 900 ELSE 500 END",
        a=by_id["专利分级评价"],
        b=by_id["数控机床直接租赁"],
    )
    assert await names(catalog, "?sort=price&order=asc") == [
        "专利分级评价",
        "企业管理诊断",
        "数控机床直接租赁",
    ]
    assert await names(catalog, "?sort=price&order=desc") == [
        "数控机床直接租赁",
        "企业管理诊断",
        "专利分级评价",
    ]
    assert await names(catalog, "?sort=sales") == ["专利分级评价", "企业管理诊断", "数控机床直接租赁"]
    assert await names(catalog, "?sort=sales&order=asc") == [
        "数控机床直接租赁",
        "企业管理诊断",
        "专利分级评价",
    ]
    assert await names(catalog, "?sort=revenue&order=desc") == [
        "数控机床直接租赁",
        "企业管理诊断",
        "专利分级评价",
    ]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?category=美容美发", "unknown_category"),
        ("?min_price_fen=100&max_price_fen=10", "price_range_invalid"),
        ("?sort=popularity", "validation_error"),
        ("?voucher_type=gold", "validation_error"),
        ("?min_price_fen=-1", "validation_error"),
        ("?page_size=1000", "validation_error"),
    ],
)
async def test_bad_listing_queries_are_clear_problems(catalog: Catalog, query: str, code: str) -> None:
    r = await catalog.client.get(f"/api/v1/products{query}")
    assert r.status_code == 422 and r.json()["code"] == code


async def test_a_suspended_providers_products_leave_the_listing_and_come_back(catalog: Catalog) -> None:
    provider, made = await three_products(catalog)
    other = await catalog.provider(name="另一家服务机构")
    await catalog.listed(other, name="其他服务")
    await catalog.suspend(provider.org_id or "")
    assert await names(catalog) == ["其他服务"]
    r = await catalog.client.get(f"/api/v1/products/{made[0]['id']}")
    assert r.status_code == 404
    # What was approved stays approved: the products are still listed, only hidden.
    assert {
        s
        for (s,) in await catalog.sql("SELECT status FROM products WHERE provider_id = :p", p=provider.org_id)
    } == {"listed"}
    await catalog.restore(provider.org_id or "")
    assert len(await names(catalog)) == 4


async def test_the_detail_shows_the_provider_card_with_its_service_hotline_in_full_and_counts_visits(
    catalog: Catalog,
) -> None:
    """服务电话 is the number the provider published for its customers (its profile's
    contact_phone): an enterprise calls it before it applies (双方接洽), so nobody sees it masked."""
    provider, made = await three_products(catalog)
    product_id = made[0]["id"]
    first = (await catalog.client.get(f"/api/v1/products/{product_id}")).json()
    second = (await catalog.client.get(f"/api/v1/products/{product_id}")).json()
    assert (first["visits"], second["visits"], second["applications"]) == (1, 2, 0)
    card = second["provider"]
    assert card["phone"] == "13812346433"  # anonymous: the hotline in full
    assert (card["address"], card["working_hours"], card["product_count"]) == (
        "南宁市青秀区民族大道 100 号",
        "周一至周五 08:00:00-18:00:00",
        3,
    )
    assert second["voucher_preview"] is None  # no token, no preview
    other = catalog.enterprise()
    seen = (await catalog.client.get(f"/api/v1/products/{product_id}", headers=other.headers)).json()
    assert seen["provider"]["phone"] == "13812346433"  # another organisation: in full too
    own = (await catalog.client.get(f"/api/v1/products/{product_id}", headers=provider.headers)).json()
    assert own["provider"]["phone"] == "13812346433" and own["visits"] == 3  # its own views do not count


async def test_the_hotline_the_provider_publishes_in_its_profile_is_the_one_shown(catalog: Catalog) -> None:
    provider, made = await three_products(catalog)
    body = {
        "profile": "新的简介",
        "categories": ["数字化转型"],
        "contact_name": "王五",
        "contact_phone": "0771-5551234",
        "address": "南宁市西乡塘区",
        "working_hours": "周一至周六 09:00:00-17:00:00",
    }
    r = await catalog.client.put("/api/v1/me/provider-profile", json=body, headers=provider.headers)
    assert r.status_code == 200, r.text
    detail = (await catalog.client.get(f"/api/v1/products/{made[0]['id']}")).json()
    assert detail["provider"]["phone"] == "0771-5551234"
    page = (await catalog.client.get(f"/api/v1/providers/{provider.org_id}")).json()
    assert page["phone"] == "0771-5551234"


async def test_with_a_token_the_detail_shows_the_callers_voucher_preview(catalog: Catalog) -> None:
    _provider, made = await three_products(catalog)
    enterprise = catalog.enterprise()
    catalog.quota.quotes[enterprise.org_id or ""] = catalog.GENERAL_QUOTE
    detail = (
        await catalog.client.get(f"/api/v1/products/{made[0]['id']}", headers=enterprise.headers)
    ).json()
    # The manual's page: 平台销售价 76元, 券后价 38元, 最高补贴 138元, 用券有效期.
    assert detail["voucher_preview"] == {
        "voucher_type": "general",
        "voucher_type_label": "通用券",
        "voucher_no": "SVC240913101010001",
        "subsidy_fen": 3800,
        "price_after_fen": 3800,
        "max_subsidy_fen": 13800,
        "valid_from": "2024-09-13",
        "valid_to": "2024-12-31",
    }
    assert catalog.quota.calls[-1] == {
        "enterprise_id": enterprise.org_id,
        "category": "数字化转型",
        "price_fen": "7600",
    }
    without_voucher = catalog.enterprise()
    detail = (
        await catalog.client.get(f"/api/v1/products/{made[0]['id']}", headers=without_voucher.headers)
    ).json()
    assert detail["voucher_preview"] is None


async def test_the_detail_shows_no_preview_while_quota_is_down(catalog: Catalog) -> None:
    _provider, made = await three_products(catalog)
    enterprise = catalog.enterprise()
    catalog.quota.quotes[enterprise.org_id or ""] = catalog.GENERAL_QUOTE
    catalog.quota.down = True
    r = await catalog.client.get(f"/api/v1/products/{made[0]['id']}", headers=enterprise.headers)
    assert r.status_code == 200 and r.json()["voucher_preview"] is None


async def test_an_unlisted_product_is_hidden_from_others_but_not_from_its_provider(catalog: Catalog) -> None:
    provider = await catalog.provider()
    draft = await catalog.create(provider)
    assert (await catalog.client.get(f"/api/v1/products/{draft['id']}")).status_code == 404
    assert (
        await catalog.client.get(f"/api/v1/products/{draft['id']}", headers=catalog.enterprise().headers)
    ).status_code == 404
    assert (
        await catalog.client.get(f"/api/v1/products/{draft['id']}", headers=provider.headers)
    ).status_code == 200
    assert (await catalog.client.get("/api/v1/products/no-such-id")).status_code == 404


async def test_the_provider_page_lists_its_products_and_shows_its_hotline_in_full(catalog: Catalog) -> None:
    provider, _made = await three_products(catalog)
    await catalog.create(provider, name="草稿产品")
    page = (await catalog.client.get(f"/api/v1/providers/{provider.org_id}")).json()  # anonymous
    assert (page["name"], page["phone"], page["product_count"]) == (
        "广西测试科技服务有限公司",
        "13812346433",
        3,
    )
    assert {p["name"] for p in page["products"]["items"]} == {
        "企业管理诊断",
        "数控机床直接租赁",
        "专利分级评价",
    }
    r = await catalog.client.get("/api/v1/providers/nobody")
    assert r.status_code == 404 and r.json()["code"] == "provider_not_found"


async def test_the_categories_name_their_voucher_and_count_listed_products(catalog: Catalog) -> None:
    await three_products(catalog)
    categories = (await catalog.client.get("/api/v1/categories")).json()
    assert len(categories) == 9
    by_name = {c["name"]: c for c in categories}
    assert by_name["数字化转型"] == {
        "name": "数字化转型",
        "voucher_type": "general",
        "voucher_type_label": "通用券",
        "listing": "general",
        "product_count": 1,
    }
    assert (by_name["直接设备租赁"]["voucher_type"], by_name["直接设备租赁"]["listing"]) == (
        "equipment_leasing",
        "special",
    )
    assert by_name["融资担保"]["product_count"] == 0


async def test_favourites_are_each_users_own(catalog: Catalog) -> None:
    provider, made = await three_products(catalog)
    user = catalog.enterprise()
    other = catalog.enterprise()
    for _ in range(2):  # adding twice changes nothing
        r = await catalog.client.put(f"/api/v1/me/favorites/{made[0]['id']}", headers=user.headers)
        assert r.status_code == 204
    await catalog.client.put(f"/api/v1/me/favorites/{made[1]['id']}", headers=user.headers)
    mine = (await catalog.client.get("/api/v1/me/favorites", headers=user.headers)).json()
    assert mine["total"] == 2 and {p["id"] for p in mine["items"]} == {made[0]["id"], made[1]["id"]}
    assert (await catalog.client.get("/api/v1/me/favorites", headers=other.headers)).json()["total"] == 0
    detail = (await catalog.client.get(f"/api/v1/products/{made[0]['id']}", headers=user.headers)).json()
    assert detail["favorited"] is True
    # A product that leaves the listing stays in the list, marked.
    await catalog.client.post(f"/api/v1/me/products/{made[1]['id']}/unlist", headers=provider.headers)
    mine = (await catalog.client.get("/api/v1/me/favorites", headers=user.headers)).json()
    assert {p["id"]: p["listed"] for p in mine["items"]} == {made[0]["id"]: True, made[1]["id"]: False}
    r = await catalog.client.delete(f"/api/v1/me/favorites/{made[0]['id']}", headers=user.headers)
    assert r.status_code == 204
    assert (await catalog.client.get("/api/v1/me/favorites", headers=user.headers)).json()["total"] == 1
    r = await catalog.client.put("/api/v1/me/favorites/no-such-product", headers=user.headers)
    assert r.status_code == 404 and r.json()["code"] == "product_not_found"
    assert (await catalog.client.get("/api/v1/me/favorites")).status_code == 401
