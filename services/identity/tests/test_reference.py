"""支付认证's lookups: regions (开户所在地), banks (开户银行), branches (开户支行), without a token."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.broker

REGIONS = "/api/v1/reference/regions"
BANKS = "/api/v1/reference/banks"
BRANCHES = "/api/v1/reference/bank-branches"


async def test_regions_are_looked_up_by_keyword_without_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get(REGIONS, params={"q": "南宁"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            {
                "code": "450100",
                "name": "南宁市",
                "full_name": "广西壮族自治区南宁市",
                "parent": "450000",
                "level": 2,
                "selectable": True,
            }
        ],
        "total": 1,
        "page": 1,
        "page_size": 20,
    }


async def test_the_provinces_and_a_provinces_cities_are_listed_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    provinces = (await client.get(REGIONS, params={"parent": "", "page_size": 100})).json()
    assert provinces["total"] == 31
    assert {p["level"] for p in provinces["items"]} == {1}
    guangxi = next(p for p in provinces["items"] if p["code"] == "450000")
    assert guangxi["selectable"] is False
    first = (await client.get(REGIONS, params={"parent": "450000", "page_size": 10})).json()
    second = (await client.get(REGIONS, params={"parent": "450000", "page_size": 10, "page": 2})).json()
    assert first["total"] == second["total"] == 14
    assert len(first["items"]) == 10 and len(second["items"]) == 4
    assert second["items"][-1]["full_name"] == "广西壮族自治区崇左市"


async def test_an_unknown_parent_or_region_is_422_naming_the_parameter(client: httpx.AsyncClient) -> None:
    r = await client.get(REGIONS, params={"parent": "999999"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "parent"
    r = await client.get(BRANCHES, params={"region": "火星"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "region"
    assert "火星" in r.json()["detail"]


async def test_branches_are_looked_up_by_keyword_region_and_bank(client: httpx.AsyncClient) -> None:
    r = await client.get(BRANCHES, params={"q": "营业部", "region": "广西壮族自治区柳州市", "bank": "工商"})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [
        {
            "name": "中国工商银行柳州分行营业部",
            "bank": "中国工商银行",
            "bank_code": "102",
            "cnaps_code": None,
            "region": "450200",
            "region_name": "广西壮族自治区柳州市",
        }
    ]
    # A province's code takes in its cities.
    everywhere = (await client.get(BRANCHES, params={"region": "450000", "bank": "中国建设银行"})).json()
    assert everywhere["total"] == 14
    assert (await client.get(BRANCHES, params={"q": "没有这个支行"})).json()["total"] == 0


async def test_banks_are_listed_once_each(client: httpx.AsyncClient) -> None:
    r = await client.get(BANKS, params={"q": "工商"})
    assert r.json()["items"] == [{"name": "中国工商银行", "bank_code": "102"}]
    names = [b["name"] for b in (await client.get(BANKS, params={"page_size": 100})).json()["items"]]
    assert len(names) == len(set(names)) and "桂林银行" in names
