"""Bad input and authorisation: each a clear 4xx problem with a stable code, nothing changed.
(In-process bus: these are about the routes, not the transport.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from common.events import ProductChanged
from common.testing.data import LOOSE_FLAGS
from common.testing.saga import known_org

YUAN = 100  # fen per yuan


@pytest.fixture
def transport_kind() -> str:
    return "inprocess"


async def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["detail"], body
    assert r.headers["content-type"].startswith("application/problem+json")
    return body


async def test_submission_refuses_what_may_not_be_ordered(world) -> None:
    w = await world()
    e, api = w.enterprise, w.api

    async def post(product_id: str, who=e, use_voucher: bool = True, **headers: str) -> Any:
        return await api.post(
            "/api/v1/orders",
            json={"product_id": product_id, "use_voucher": use_voucher},
            headers={**who.headers, "Idempotency-Key": f"k-{product_id}-{who.user_id}", **headers},
        )

    await problem(await post("no-such-product"), 404, "product_not_found")
    unlisted = w.catalog.add(w.provider.org_id or "", status="unlisted", listed=False)
    await problem(await post(unlisted), 409, "product_not_listed")
    suspended = w.catalog.add(w.provider.org_id or "", provider_suspended=True)
    await problem(await post(suspended), 409, "provider_suspended")
    own = w.catalog.add(e.org_id or "")
    await problem(await post(own), 409, "own_product")
    # an enterprise without a usable voucher: refused with the voucher, accepted without it
    other = w.h.issuer.member(caps=("enterprise",))
    await problem(await post(w.product_id, who=other), 409, "no_usable_voucher")
    assert (await post(w.product_id, who=other, use_voucher=False)).status_code == 201
    # not an enterprise (a provider only), no token, no key, bad body
    await problem(await post(w.product_id, who=w.provider), 403, "enterprise_required")
    r = await api.post("/api/v1/orders", json={"product_id": w.product_id}, headers=e.headers)
    await problem(r, 400, "idempotency_key_required")
    r = await api.post("/api/v1/orders", json={"product_id": w.product_id, "use_voucher": True})
    await problem(r, 401, "unauthenticated")
    r = await api.post(
        "/api/v1/orders", json={"product_id": "", "x": 1}, headers={**e.headers, "Idempotency-Key": "z"}
    )
    await problem(r, 422, "validation_error")
    r = await api.post(
        "/api/v1/orders",
        json={"product_id": "../stats", "use_voucher": False},
        headers={**e.headers, "Idempotency-Key": "path"},
    )
    await problem(r, 422, "validation_error")
    listed = (await api.get("/api/v1/me/orders", headers=e.headers)).json()
    assert listed["total"] == 0  # nothing was ordered by any refused request


async def test_a_suspended_enterprise_cannot_order_and_a_suspended_provider_cannot_accept(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.suspend(w.provider.org_id or "")
    await w.settle()
    r = await w.api.post(f"/api/v1/orders/{order['id']}/accept", headers=w.provider.headers)
    await problem(r, 403, "organization_suspended")
    assert (await w.get(order))["status"] == "awaiting_acceptance"
    # ordering its products is refused too (orders's own copy of the provider's status)
    body = await problem(
        await w.api.post(
            "/api/v1/orders",
            json={"product_id": w.product_id, "use_voucher": False},
            headers={**w.enterprise.headers, "Idempotency-Key": "after-suspension"},
        ),
        409,
        "provider_suspended",
    )
    assert "暂停" in body["detail"]
    await w.suspend(w.enterprise.org_id or "")
    await w.settle()
    r = await w.api.post(
        "/api/v1/orders",
        json={"product_id": w.product_id, "use_voucher": False},
        headers={**w.enterprise.headers, "Idempotency-Key": "suspended"},
    )
    await problem(r, 403, "organization_suspended")


async def test_an_order_placed_before_the_organisations_reach_orders_is_decided_on_identitys_answer(
    world,
) -> None:
    """Certified (and onboarded) a moment ago, the events still in flight: orders has no copy
    of either party. It asks identity: the order carries the certified name, and a suspension
    identity knows of refuses it."""
    w = await world()
    newcomer = w.h.issuer.member(caps=("enterprise",))
    fresh = known_org(w.h.peers["identity"], newcomer.org_id or "")
    assert fresh is not None
    fresh.name = "广西新认证制造有限公司"
    order = await w.submit(use_voucher=False, who=newcomer)
    assert order["enterprise_name"] == "广西新认证制造有限公司"

    late_provider = w.h.issuer.member(caps=("provider",))
    suspended = known_org(w.h.peers["identity"], late_provider.org_id or "")
    assert suspended is not None
    suspended.suspended = True
    r = await w.api.post(
        "/api/v1/orders",
        json={"product_id": w.catalog.add(late_provider.org_id or ""), "use_voucher": False},
        headers={**w.enterprise.headers, "Idempotency-Key": "unknown-provider"},
    )
    await problem(r, 409, "provider_suspended")


@pytest.mark.parametrize("flag", LOOSE_FLAGS)
async def test_use_voucher_is_a_json_boolean_or_a_422_that_orders_nothing(world, flag) -> None:
    """`use_voucher: "yes"` was taken for true."""
    w = await world()
    r = await w.api.post(
        "/api/v1/orders",
        json={"product_id": w.product_id, "use_voucher": flag},
        headers={**w.enterprise.headers, "Idempotency-Key": "loose-flag"},
    )
    body = await problem(r, 422, "validation_error")
    assert body["errors"][0] == {"field": "use_voucher", "message": "应为布尔值"}
    assert body["detail"].startswith("使用服务券：")
    async with w.h.db("orders").session() as s:
        assert (await s.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 0


async def test_another_organisation_neither_sees_nor_touches_an_order(world) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    stranger = w.h.issuer.member(caps=("enterprise", "provider"))
    api, oid = w.api, order["id"]
    await problem(await api.get(f"/api/v1/orders/{oid}", headers=stranger.headers), 404, "order_not_found")
    for action in ("cancel", "accept", "start-service", "complete-service"):
        await problem(
            await api.post(f"/api/v1/orders/{oid}/{action}", headers=stranger.headers), 404, "order_not_found"
        )
    r = await api.post(f"/api/v1/orders/{oid}/reject", json={"reason": "不做"}, headers=stranger.headers)
    await problem(r, 404, "order_not_found")
    r = await api.post(f"/api/v1/orders/{oid}/evaluation", json={"rating": 1}, headers=stranger.headers)
    await problem(r, 404, "order_not_found")
    # each party acts only as itself: the enterprise cannot accept its own order
    await problem(
        await api.post(f"/api/v1/orders/{oid}/accept", headers=w.enterprise.headers), 403, "provider_required"
    )
    await problem(
        await api.post(f"/api/v1/orders/{oid}/cancel", headers=w.provider.headers), 403, "enterprise_required"
    )
    assert (await api.get("/api/v1/me/orders", headers=stranger.headers)).json()["total"] == 0
    assert (await api.get("/api/v1/me/service-orders", headers=stranger.headers)).json()["total"] == 0
    await problem(await api.get("/api/v1/admin/orders", headers=w.enterprise.headers), 403, "forbidden_role")
    # staff see it
    staff = w.h.issuer.staff("reviewer")
    assert (await api.get(f"/api/v1/orders/{oid}", headers=staff.headers)).json()["actions"] == []
    assert (await api.get("/api/v1/admin/orders", headers=staff.headers)).json()["total"] == 1
    seen = await w.get(order)
    assert seen["status"] == "awaiting_acceptance" and len(seen["timeline"]) == 2


async def test_a_step_in_the_wrong_state_is_a_409_naming_the_state_and_changes_nothing(world) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    before = await w.get(order)
    for action, who in (("start-service", w.provider), ("complete-service", w.provider)):
        r = await w.api.post(f"/api/v1/orders/{order['id']}/{action}", headers=who.headers)
        body = await problem(r, 409, "order_state_conflict")
        assert body["status_label"] == "待接单" and "待接单" in body["detail"]
    r = await w.api.post(
        f"/api/v1/orders/{order['id']}/evaluation", json={"rating": 5}, headers=w.enterprise.headers
    )
    await problem(r, 409, "order_state_conflict")
    assert await w.get(order) == before
    await w.settle()
    assert await w.published_types(order["id"]) == [
        "orders.order_submitted",
        "orders.order_awaiting_acceptance",  # once quota reserved: the provider's to accept
    ]


async def test_an_evaluation_is_one_to_five_stars_of_at_most_200_characters_and_only_once(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.signed(order, 40 * YUAN, 0, 0)
    await w.settle()
    await w.post(order, "start-service", w.provider)
    await w.post(order, "complete-service", w.provider)
    url = f"/api/v1/orders/{order['id']}/evaluation"
    headers = w.enterprise.headers
    body = await problem(
        await w.api.post(url, json={"rating": 5, "content": "好" * 201}, headers=headers),
        422,
        "validation_error",
    )
    assert body["errors"][0]["field"] == "content"
    await problem(await w.api.post(url, json={"rating": 6}, headers=headers), 422, "validation_error")
    await problem(await w.api.post(url, json={"rating": 0}, headers=headers), 422, "validation_error")
    r = await w.api.post(url, json={"rating": 3, "content": "好" * 200}, headers=headers)
    assert r.status_code == 201 and r.json()["rating_label"] == "一般"
    await problem(await w.api.post(url, json={"rating": 5}, headers=headers), 409, "already_evaluated")
    seen = await w.get(order)
    assert seen["evaluation"]["rating"] == 3 and seen["status"] == "awaiting_balance"


async def test_the_same_idempotency_key_makes_one_order_and_another_body_with_it_is_refused(world) -> None:
    w = await world()
    first = await w.submit(key="same-key")
    again = await w.api.post(
        "/api/v1/orders",
        json={"product_id": w.product_id, "use_voucher": True},
        headers={**w.enterprise.headers, "Idempotency-Key": "same-key"},
    )
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await w.api.post(
        "/api/v1/orders",
        json={"product_id": w.product_id, "use_voucher": False},
        headers={**w.enterprise.headers, "Idempotency-Key": "same-key"},
    )
    await problem(other, 422, "idempotency_key_reused")
    assert (await w.api.get("/api/v1/me/orders", headers=w.enterprise.headers)).json()["total"] == 1


async def test_refused_submissions_at_once_are_answered_at_once_and_give_their_keys_back(world) -> None:
    """A refused submission gives its Idempotency-Key back in a transaction of its own. Were
    its session still holding a connection then, a request would need two at once, and as
    many refusals at once as the pool has connections would each hold one and wait for
    another (the pool's 30 s time-out, then a 500; the fault test saw orders stall so when
    quota was killed under load, its consumer starved with it). Two connections in all here."""
    w = await world({"db_pool_size": 1})
    w.quota.vouchers.clear()  # every quote refused: no usable voucher
    keys = [f"refused-{i}" for i in range(6)]

    async def submit(key: str) -> Any:
        return await w.api.post(
            "/api/v1/orders",
            json={"product_id": w.product_id, "use_voucher": True},
            headers={**w.enterprise.headers, "Idempotency-Key": key},
        )

    answers = await asyncio.wait_for(asyncio.gather(*(submit(k) for k in keys)), timeout=15)
    for r in answers:
        await problem(r, 409, "no_usable_voucher")
    w.quota.give(w.enterprise.org_id or "")
    again = await asyncio.wait_for(asyncio.gather(*(submit(k) for k in keys)), timeout=15)
    assert [r.status_code for r in again] == [201] * len(keys), [r.text for r in again]


async def test_the_lists_have_the_manuals_tabs_with_counts_newest_first(world) -> None:
    w = await world()
    first = await w.submit(use_voucher=False)
    second = await w.submit()
    third = await w.submit(use_voucher=False)
    await w.post(first, "accept", w.provider)
    await w.post(third, "cancel", w.enterprise)
    e, p = w.enterprise.headers, w.provider.headers

    mine = (await w.api.get("/api/v1/me/orders", headers=e)).json()
    assert [o["id"] for o in mine["items"]] == [third["id"], second["id"], first["id"]]
    assert mine["counts"] == {
        "all": 3,
        "awaiting_acceptance": 1,
        "awaiting_contract": 1,
        "awaiting_payment": 0,
        "awaiting_service": 0,
        "in_service": 0,
        "completed": 0,
        "cancelled": 1,
        "evaluated": 0,
    }
    assert [(o["status_label"], o["actions"]) for o in mine["items"]] == [
        ("订单取消", []),
        ("待接单", ["cancel"]),
        ("待签合同", ["cancel"]),
    ]
    tab = (await w.api.get("/api/v1/me/orders?tab=awaiting_contract", headers=e)).json()
    assert [o["id"] for o in tab["items"]] == [first["id"]] and tab["counts"]["all"] == 3
    by_status = (await w.api.get("/api/v1/me/orders?status=pending_voucher", headers=e)).json()
    assert [o["id"] for o in by_status["items"]] == [second["id"]]
    paged = (await w.api.get("/api/v1/me/orders?page=2&page_size=2", headers=e)).json()
    assert paged["total"] == 3 and [o["id"] for o in paged["items"]] == [first["id"]]
    r = await w.api.get("/api/v1/me/orders?tab=nonsense", headers=e)
    await problem(r, 422, "validation_error")

    theirs = (await w.api.get("/api/v1/me/service-orders?tab=awaiting_acceptance", headers=p)).json()
    assert [o["id"] for o in theirs["items"]] == [second["id"]]
    assert theirs["items"][0]["enterprise_name"] == "广西示范制造有限公司"
    assert theirs["items"][0]["actions"] == []  # the voucher is still being reserved


async def test_an_accept_racing_a_cancel_is_decided_once_under_the_orders_lock(world) -> None:
    w = await world()
    for _ in range(3):
        order = await w.submit(use_voucher=False)
        url = f"/api/v1/orders/{order['id']}"
        accepted, cancelled = await asyncio.gather(
            w.api.post(f"{url}/accept", headers=w.provider.headers),
            w.api.post(f"{url}/cancel", headers=w.enterprise.headers),
        )
        await w.settle()
        types = await w.published_types(order["id"])
        seen = await w.get(order)
        if accepted.status_code == 200:  # accepted first: the cancel became a void request
            assert cancelled.status_code == 200 and seen["status"] == "awaiting_contract"
            assert "orders.order_cancelled" not in types and "orders.cancellation_requested" in types
        else:  # cancelled first: the acceptance was refused
            assert accepted.json()["code"] == "order_state_conflict" and seen["status"] == "cancelled"
            assert "orders.order_accepted" not in types
        twice = await asyncio.gather(
            *(w.api.post(f"{url}/accept", headers=w.provider.headers) for _ in range(2))
        )
        assert all(r.status_code == 409 for r in twice)


async def test_catalogs_product_changes_are_kept_once_and_never_undone_by_a_late_one(world) -> None:
    w = await world()
    pid = w.product_id

    def change(price: int, listed: bool) -> ProductChanged:
        return ProductChanged(
            product_id=pid,
            provider_id=w.provider.org_id or "",
            name="专利分级评价",
            category="数字化转型",
            price_fen=price,
            market_price_fen=price,
            max_subsidy_fen=13_800,
            listed=listed,
            status="listed" if listed else "unlisted",
        )

    await w.emit(change(7_600, False), pid, sequence=2, twice=True)
    await w.emit(change(8_000, True), pid, sequence=1)  # late
    await w.settle()
    async with w.h.db("orders").session() as s:
        row = (
            await s.execute(
                text("SELECT price_fen, listed FROM order_product_copies WHERE product_id = :p"), {"p": pid}
            )
        ).one()
    assert (row.price_fen, row.listed) == (7_600, False)


async def test_a_provider_without_a_receiving_account_cannot_accept(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    identity = known_org(w.h.peers["identity"], w.provider.org_id or "")
    assert identity is not None
    identity.bank_account = False
    r = await w.api.post(f"/api/v1/orders/{order['id']}/accept", headers=w.provider.headers)
    assert r.status_code == 409 and r.json()["code"] == "bank_account_required", r.text
    assert (await w.get(order))["status"] == "awaiting_acceptance"
    identity.bank_account = True
    assert (await w.post(order, "accept", w.provider))["status"] == "awaiting_contract"


async def test_an_acceptance_is_judged_in_the_rules_order_though_identity_is_asked_first(world) -> None:
    """identity is asked before the order is locked, its answers judged after: another
    organisation's order is still a 404 whatever identity says, a suspension comes before
    the receiving account, and an identity that cannot answer is a retryable 409."""
    w = await world()
    order = await w.submit(use_voucher=False)
    url = f"/api/v1/orders/{order['id']}/accept"
    stranger = w.h.issuer.member(caps=("provider",))
    identity = w.h.peers["identity"]
    identity.state.down = True
    await problem(await w.api.post(url, headers=stranger.headers), 404, "order_not_found")
    body = await problem(await w.api.post(url, headers=w.provider.headers), 409, "organization_syncing")
    assert body["detail"] == "认证信息同步中，请稍后再试"
    identity.state.down = False
    account = known_org(identity, w.provider.org_id or "")
    assert account is not None
    account.bank_account = False
    await w.suspend(w.provider.org_id or "")
    await w.settle()
    await problem(await w.api.post(url, headers=w.provider.headers), 403, "organization_suspended")
    assert (await w.get(order))["status"] == "awaiting_acceptance"
    assert "orders.order_accepted" not in await w.published_types(order["id"])
