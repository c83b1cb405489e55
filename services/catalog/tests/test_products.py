"""服务产品管理: a provider's products through review to the listing, and back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from common.testing.data import LOOSE_AMOUNTS

if TYPE_CHECKING:
    from conftest import Catalog

pytestmark = pytest.mark.broker


async def test_a_product_goes_from_draft_through_review_to_the_listing(catalog: Catalog) -> None:
    provider = await catalog.provider()
    draft = await catalog.create(provider)
    assert (draft["status"], draft["status_label"], draft["review_flags"]) == ("draft", "草稿", [])
    assert draft["actions"] == ["edit", "submit"]
    r = await catalog.client.post(f"/api/v1/me/products/{draft['id']}/submit", headers=provider.headers)
    assert r.json()["status"] == "pending_review"

    queue = (await catalog.client.get("/api/v1/admin/products", headers=catalog.reviewer.headers)).json()
    assert [p["id"] for p in queue["items"]] == [draft["id"]]
    assert queue["items"][0]["provider_name"] == "广西测试科技服务有限公司"
    assert queue["counts"]["pending_review"] == 1
    r = await catalog.client.post(
        f"/api/v1/admin/products/{draft['id']}/approve", headers=catalog.reviewer.headers
    )
    assert r.status_code == 200 and r.json()["status"] == "listed"

    mine = (await catalog.client.get("/api/v1/me/products", headers=provider.headers)).json()
    assert mine["counts"] == {"draft": 0, "pending_review": 0, "rejected": 0, "listed": 1, "unlisted": 0}
    listing = (await catalog.client.get("/api/v1/products")).json()
    assert [p["id"] for p in listing["items"]] == [draft["id"]]
    changes = await catalog.events("catalog.product_changed")
    assert [(c["status"], c["listed"]) for c in changes] == [
        ("draft", False),
        ("pending_review", False),
        ("listed", True),
    ]
    assert changes[-1]["price_fen"] == 7600 and changes[-1]["max_subsidy_fen"] == 13800
    audit = await catalog.sql("SELECT action FROM audit_log WHERE target_id = :id", id=draft["id"])
    assert [a[0] for a in audit] == ["product.approve"]
    reviewed = await catalog.events("catalog.product_reviewed")  # the provider is told
    assert reviewed == [
        {
            "product_id": draft["id"],
            "provider_id": provider.org_id,
            "name": draft["name"],
            "approved": True,
            "reason": None,
        }
    ]


async def test_a_rejected_product_shows_its_reason_and_can_be_submitted_again(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.create(provider)
    await catalog.client.post(f"/api/v1/me/products/{product['id']}/submit", headers=provider.headers)
    r = await catalog.client.post(
        f"/api/v1/admin/products/{product['id']}/reject", headers=catalog.reviewer.headers
    )
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = await catalog.client.post(
        f"/api/v1/admin/products/{product['id']}/reject",
        json={"reason": "交付物描述不清"},
        headers=catalog.reviewer.headers,
    )
    assert (r.json()["status"], r.json()["reject_reason"]) == ("rejected", "交付物描述不清")
    [reviewed] = await catalog.events("catalog.product_reviewed")  # the provider is told why
    assert (reviewed["approved"], reviewed["reason"]) == (False, "交付物描述不清")
    r = await catalog.client.post(f"/api/v1/me/products/{product['id']}/submit", headers=provider.headers)
    assert r.json()["status"] == "pending_review" and r.json()["reject_reason"] is None


async def test_the_pre_review_flags_show_in_the_queue_and_filter_it(catalog: Catalog) -> None:
    provider = await catalog.provider()
    clean = await catalog.create(provider, name="企业诊断")
    flagged = await catalog.create(provider, name="高企认定包过", deliverables="")
    assert [f["code"] for f in flagged["review_flags"]] == ["missing_deliverables", "banned_phrase"]
    for p in (clean, flagged):
        await catalog.client.post(f"/api/v1/me/products/{p['id']}/submit", headers=provider.headers)
    only = (
        await catalog.client.get("/api/v1/admin/products?flagged=true", headers=catalog.reviewer.headers)
    ).json()
    assert [(p["id"], p["flagged"]) for p in only["items"]] == [(flagged["id"], True)]
    others = (
        await catalog.client.get("/api/v1/admin/products?flagged=false", headers=catalog.reviewer.headers)
    ).json()
    assert [p["id"] for p in others["items"]] == [clean["id"]]


async def test_a_listed_product_whose_price_changes_goes_back_to_review(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    text_only = catalog.product_body(description="新的描述")
    r = await catalog.client.put(
        f"/api/v1/me/products/{product['id']}", json=text_only, headers=provider.headers
    )
    assert r.json()["status"] == "listed"
    cheaper = catalog.product_body(platform_price_fen=7000)
    r = await catalog.client.put(
        f"/api/v1/me/products/{product['id']}", json=cheaper, headers=provider.headers
    )
    assert r.json()["status"] == "pending_review"
    assert (await catalog.client.get("/api/v1/products")).json()["total"] == 0
    last = (await catalog.events("catalog.product_changed"))[-1]
    assert (last["price_fen"], last["listed"], last["status"]) == (7000, False, "pending_review")


async def test_a_listed_product_whose_max_subsidy_changes_goes_back_to_review(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    r = await catalog.client.put(
        f"/api/v1/me/products/{product['id']}",
        json=catalog.product_body(max_subsidy_fen=20000),
        headers=provider.headers,
    )
    assert r.json()["status"] == "pending_review"


async def test_unlisting_and_relisting_an_unchanged_product_needs_no_review(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.listed(provider)
    r = await catalog.client.post(f"/api/v1/me/products/{product['id']}/unlist", headers=provider.headers)
    assert r.json()["status"] == "unlisted"
    assert (await catalog.client.get("/api/v1/products")).json()["total"] == 0
    r = await catalog.client.post(f"/api/v1/me/products/{product['id']}/relist", headers=provider.headers)
    assert r.json()["status"] == "listed"
    # Changed while unlisted: back through review.
    await catalog.client.post(f"/api/v1/me/products/{product['id']}/unlist", headers=provider.headers)
    await catalog.client.put(
        f"/api/v1/me/products/{product['id']}",
        json=catalog.product_body(platform_price_fen=5000),
        headers=provider.headers,
    )
    r = await catalog.client.post(f"/api/v1/me/products/{product['id']}/relist", headers=provider.headers)
    assert r.json()["status"] == "pending_review"


async def test_a_transition_the_status_does_not_allow_is_a_conflict_that_changes_nothing(
    catalog: Catalog,
) -> None:
    provider = await catalog.provider()
    product = await catalog.create(provider)
    r = await catalog.client.post(f"/api/v1/me/products/{product['id']}/unlist", headers=provider.headers)
    assert r.status_code == 409 and r.json()["code"] == "product_status_conflict"
    assert "草稿" in r.json()["detail"]
    r = await catalog.client.post(
        f"/api/v1/admin/products/{product['id']}/approve", headers=catalog.reviewer.headers
    )
    assert r.status_code == 409
    assert (await catalog.sql("SELECT status FROM products"))[0][0] == "draft"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"category": "美容美发"}, "unknown_category"),
        ({"platform_price_fen": 9000}, "price_above_market"),
        ({"platform_price_fen": 0}, "price_not_positive"),
        ({"max_subsidy_fen": -1}, "validation_error"),
        ({"name": ""}, "validation_error"),
        ({"market_price_fen": "八十"}, "validation_error"),
    ],
)
async def test_bad_products_are_refused_and_change_nothing(
    catalog: Catalog, change: dict[str, object], code: str
) -> None:
    provider = await catalog.provider()
    r = await catalog.client.post(
        "/api/v1/me/products", json=catalog.product_body(**change), headers=provider.headers
    )
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert await catalog.sql("SELECT id FROM products") == []


@pytest.mark.parametrize("field", ["market_price_fen", "platform_price_fen", "max_subsidy_fen"])
@pytest.mark.parametrize("amount", LOOSE_AMOUNTS)
async def test_product_prices_are_json_integers_or_a_422_that_changes_nothing(
    catalog: Catalog, field: str, amount: object
) -> None:
    provider = await catalog.provider()
    r = await catalog.client.post(
        "/api/v1/me/products", json=catalog.product_body(**{field: amount}), headers=provider.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": field, "message": "应为整数"}
    assert await catalog.sql("SELECT id FROM products") == []


async def test_an_unapproved_organisation_cannot_create_products(catalog: Catalog) -> None:
    applicant = catalog.enterprise()
    await catalog.apply(applicant)  # pending, not approved
    r = await catalog.client.post(
        "/api/v1/me/products", json=catalog.product_body(), headers=applicant.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "provider_not_approved"
    # A token claiming the capability does not make a provider either: catalog's record decides.
    forged = catalog.h.issuer.member(caps=("enterprise", "provider"))
    r = await catalog.client.post("/api/v1/me/products", json=catalog.product_body(), headers=forged.headers)
    assert r.status_code == 403 and r.json()["code"] == "provider_not_approved"
    staff = catalog.h.issuer.staff("administrator")
    r = await catalog.client.post("/api/v1/me/products", json=catalog.product_body(), headers=staff.headers)
    assert r.status_code == 403
    assert await catalog.sql("SELECT id FROM products") == []


async def test_a_suspended_provider_cannot_create_or_submit_but_may_unlist(catalog: Catalog) -> None:
    provider = await catalog.provider()
    draft = await catalog.create(provider)
    listed = await catalog.listed(provider, name="企业诊断")
    await catalog.suspend(provider.org_id or "")
    r = await catalog.client.post(
        "/api/v1/me/products", json=catalog.product_body(), headers=provider.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    r = await catalog.client.post(f"/api/v1/me/products/{draft['id']}/submit", headers=provider.headers)
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    r = await catalog.client.post(f"/api/v1/me/products/{listed['id']}/unlist", headers=provider.headers)
    assert r.status_code == 200 and r.json()["status"] == "unlisted"
    r = await catalog.client.post(f"/api/v1/me/products/{listed['id']}/relist", headers=provider.headers)
    assert r.status_code == 403
    assert (await catalog.sql("SELECT status FROM products WHERE id = :id", id=draft["id"]))[0][0] == "draft"


async def test_another_providers_product_is_not_found(catalog: Catalog) -> None:
    owner = await catalog.provider()
    other = await catalog.provider(name="另一家服务机构")
    product = await catalog.create(owner)
    for method, path in [
        ("GET", f"/api/v1/me/products/{product['id']}"),
        ("PUT", f"/api/v1/me/products/{product['id']}"),
        ("POST", f"/api/v1/me/products/{product['id']}/submit"),
    ]:
        r = await catalog.client.request(
            method,
            path,
            json=catalog.product_body(name="抢来的") if method == "PUT" else None,
            headers=other.headers,
        )
        assert r.status_code == 404 and r.json()["code"] == "product_not_found", (method, path)
    assert (await catalog.client.get("/api/v1/me/products", headers=other.headers)).json()["total"] == 0
    assert (await catalog.sql("SELECT name, status FROM products"))[0] == ("专利分级评价", "draft")


async def test_only_reviewers_review_products(catalog: Catalog) -> None:
    provider = await catalog.provider()
    product = await catalog.create(provider)
    await catalog.client.post(f"/api/v1/me/products/{product['id']}/submit", headers=provider.headers)
    for who in (provider, catalog.h.issuer.staff("finance")):
        r = await catalog.client.post(f"/api/v1/admin/products/{product['id']}/approve", headers=who.headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    admin = catalog.h.issuer.staff("administrator")
    r = await catalog.client.post(f"/api/v1/admin/products/{product['id']}/approve", headers=admin.headers)
    assert r.status_code == 200  # administrators pass every staff check
