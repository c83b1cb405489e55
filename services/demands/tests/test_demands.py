"""我的需求管理, the 企业需求 board and 我要对接, through demands' API on its real database."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import text

from common.auth import issue_service_token
from common.reads import PortalStats

from .conftest import World


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A refusal a user can read: the status, the stable code, a Chinese detail."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert re.search(r"[\u4e00-\u9fff]", body["detail"]), body
    return body


async def statuses(w: World) -> list[tuple[str, str]]:
    async with w.h.db("demands").session() as s:
        rows = await s.execute(text("SELECT demand_no, status FROM demands ORDER BY demand_no"))
        return [(r.demand_no, r.status) for r in rows]


async def test_publish_return_edit_approve_respond_close(world: World) -> None:
    w = world
    demand = await w.submitted()
    assert re.fullmatch(r"XQ\d{15}", demand["demand_no"])
    assert demand["status"] == "pending" and demand["status_label"] == "待处理"
    assert demand["contact_phone"] == "13812346433"  # the account's phone
    assert demand["org_name"] == "广西北软软件股份有限公司"
    assert demand["budget_label"] == "50,000元"
    assert demand["published_at_text"] == "--"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", demand["applied_at_text"])

    # Not on the board before it is published.
    assert (await w.call("GET", f"/demands/{demand['id']}")).status_code == 404

    # A reviewer opens it: 待审核; the enterprise's tab counts follow.
    opened = await w.call("GET", f"/admin/demands/{demand['id']}", w.reviewer)
    assert opened.json()["status"] == "under_review"
    mine = (await w.call("GET", "/me/demands", w.enterprise)).json()
    assert mine["counts"]["under_review"] == 1 and mine["counts"]["all"] == 1
    assert mine["items"][0]["status_label"] == "待审核"

    # Returned with a reason, edited (back to 待处理), approved.
    problem(
        await w.call("POST", f"/admin/demands/{demand['id']}/return", w.reviewer, json={}),
        422,
        "reason_required",
    )
    r = await w.call(
        "POST", f"/admin/demands/{demand['id']}/return", w.reviewer, json={"reason": "请补充厂房面积"}
    )
    assert r.json()["status"] == "returned"
    mine = (await w.call("GET", f"/me/demands/{demand['id']}", w.enterprise)).json()
    assert mine["review_reason"] == "请补充厂房面积" and mine["status_label"] == "退回修改"
    r = await w.call(
        "PUT",
        f"/me/demands/{demand['id']}",
        w.enterprise,
        json=w.demand_body(content="厂房面积约 3000 平方米。"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["review_reason"] is None
    r = await w.call("POST", f"/admin/demands/{demand['id']}/approve", w.reviewer)
    assert r.json()["status"] == "published" and r.json()["published_at_text"] != "--"

    # On the board: the phone masked, the category's description, no response yet.
    board = (await w.call("GET", "/demands", params={"category": "技术创新"})).json()
    assert board["total"] == 1 and board["category_description"].startswith("新产品研发")
    item = board["items"][0]
    assert item["phone"] == "138****6433" and "contact_phone" not in item
    assert item["response_label"] == "目前已有0家服务机构申请对接"
    assert "13812346433" not in (await w.call("GET", f"/demands/{demand['id']}")).text

    # Published: no more edits.
    problem(
        await w.call("PUT", f"/me/demands/{demand['id']}", w.enterprise, json=w.demand_body()),
        409,
        "demand_not_editable",
    )

    # 我要对接: once per provider; the enterprise sees each in full.
    assert (await w.respond(demand["id"])).status_code == 201
    problem(await w.respond(demand["id"]), 409, "already_responded")
    assert (await w.respond(demand["id"], w.other_provider, phone="13787654321")).status_code == 201
    seen = (await w.call("GET", f"/demands/{demand['id']}", w.provider)).json()
    assert seen["response_count"] == 2 and seen["responded"] is True
    assert seen["response_label"] == "目前已有2家服务机构申请对接"
    responses = (await w.call("GET", f"/me/demands/{demand['id']}/responses", w.colleague)).json()
    assert (responses["total"], responses["page"], responses["page_size"]) == (2, 1, 20)
    assert [(x["provider_name"], x["phone"]) for x in responses["items"]] == [
        ("广西科智信息服务有限公司", "13912345678"),
        ("南宁某某咨询有限公司", "13787654321"),
    ]

    # Closed: off the board, no more responses, not closed twice.
    r = await w.call("POST", f"/me/demands/{demand['id']}/close", w.enterprise)
    assert r.json()["status"] == "closed" and r.json()["status_label"] == "关闭需求"
    assert (await w.call("GET", "/demands")).json()["total"] == 0
    third = w.h.issuer.caller(role="owner", org_id="org-third", caps=("enterprise", "provider"))
    problem(await w.respond(demand["id"], third), 409, "demand_closed")
    problem(await w.call("POST", f"/me/demands/{demand['id']}/close", w.enterprise), 409, "demand_closed")

    # Every decision is in demands' audit log.
    async with w.h.db("demands").session() as s:
        actions = (await s.execute(text("SELECT action FROM audit_log ORDER BY id"))).scalars().all()
    assert actions == ["demand.open", "demand.return", "demand.approve"]


async def test_tabs_and_counts(world: World) -> None:
    w = world
    a = await w.submitted(name="需求一")
    b = await w.published(name="需求二")
    c = await w.submitted(name="需求三", budget_mode="quote", budget_fen=None)
    await w.call("POST", f"/admin/demands/{c['id']}/reject", w.reviewer, json={"reason": "不属于服务范围"})
    await w.call("POST", f"/me/demands/{a['id']}/close", w.enterprise)
    page = (await w.call("GET", "/me/demands", w.enterprise)).json()
    assert page["counts"] == {
        "all": 3, "pending": 0, "published": 1, "under_review": 0, "returned": 0, "rejected": 1, "closed": 1,
    }  # fmt: skip
    published = (await w.call("GET", "/me/demands", w.enterprise, params={"status": "published"})).json()
    assert [x["id"] for x in published["items"]] == [b["id"]]
    rejected = (await w.call("GET", "/me/demands", w.enterprise, params={"status": "rejected"})).json()
    assert rejected["items"][0]["budget_label"] == "需要服务商报价"
    assert rejected["items"][0]["review_reason"] == "不属于服务范围"
    # Another enterprise sees none of them.
    assert (await w.call("GET", "/me/demands", w.other_enterprise)).json()["total"] == 0


async def test_board_filters_and_is_newest_first(world: World) -> None:
    w = world
    first = await w.published(name="企业ERP管理系统", category="数字化转型", content="需要 ERP 实施")
    second = await w.published(
        w.other_enterprise, name="厂房设计", category="技术创新", content="100%_特殊字符"
    )
    ids = [x["id"] for x in (await w.call("GET", "/demands")).json()["items"]]
    assert ids == [second["id"], first["id"]]
    assert [x["id"] for x in (await w.call("GET", "/demands", params={"q": "ERP"})).json()["items"]] == [
        first["id"]
    ]
    assert [x["id"] for x in (await w.call("GET", "/demands", params={"q": "%_"})).json()["items"]] == [
        second["id"]
    ]
    assert (await w.call("GET", "/demands", params={"q": "%"})).json()["total"] == 1  # % is literal
    assert (await w.call("GET", "/demands", params={"category": "融资担保"})).json()["total"] == 0
    assert (await w.call("GET", "/demands", params={"category": "全部"})).json()["total"] == 2
    page = (await w.call("GET", "/demands", params={"page_size": 1, "page": 2})).json()
    assert page["total"] == 2 and [x["id"] for x in page["items"]] == [first["id"]]


async def test_bad_input_changes_nothing(world: World) -> None:
    w = world
    before = await statuses(w)
    for body, status, code in [
        (w.demand_body(content="需" * 301), 422, "content_too_long"),
        (w.demand_body(category="装修服务"), 422, "unknown_category"),
        (w.demand_body(budget_fen=None), 422, "budget_amount_required"),
        (w.demand_body(budget_fen="500"), 422, "validation_error"),
        (w.demand_body(budget_fen=1000.0), 422, "validation_error"),
        (w.demand_body(budget_mode="quote"), 422, "budget_amount_not_expected"),
    ]:
        problem(await w.call("POST", "/me/demands", w.enterprise, json=body), status, code)
    ok = await w.call("POST", "/me/demands", w.enterprise, json=w.demand_body(content="需" * 300))
    assert ok.status_code == 201  # 300 characters, 900 bytes: the form's counter
    w.made.append(ok.json()["id"])
    # A provider-only or staff caller cannot publish; nobody unsigned.
    problem(await w.call("POST", "/me/demands", w.reviewer, json=w.demand_body()), 403, "enterprise_required")
    problem(await w.call("POST", "/me/demands", json=w.demand_body()), 401, "unauthenticated")
    assert len(await statuses(w)) == len(before) + 1


async def test_who_may_touch_what(world: World) -> None:
    w = world
    demand = await w.published()
    pending = await w.submitted()
    # Another enterprise's demand and responses are not there for it.
    for method, path in [
        ("GET", f"/me/demands/{demand['id']}"),
        ("GET", f"/me/demands/{demand['id']}/responses"),
        ("PUT", f"/me/demands/{pending['id']}"),
        ("POST", f"/me/demands/{demand['id']}/close"),
    ]:
        r = await w.call(method, path, w.other_enterprise, json=w.demand_body() if method == "PUT" else None)
        problem(r, 404, "demand_not_found")
    # Only providers respond, never to their own organisation's demand, never to an unpublished one.
    problem(await w.respond(demand["id"], w.other_enterprise), 403, "provider_required")
    own = await w.published(w.provider)
    problem(await w.respond(own["id"], w.provider), 409, "own_demand")
    problem(await w.respond(pending["id"], w.provider), 404, "demand_not_found")
    # Only reviewers decide.
    for who in (w.finance, w.enterprise):
        problem(await w.call("POST", f"/admin/demands/{pending['id']}/approve", who), 403, "forbidden_role")
    assert (await w.call("GET", "/admin/demands", w.admin)).status_code == 200  # administrators may review
    problem(
        await w.call("POST", f"/admin/demands/{demand['id']}/approve", w.reviewer),
        409,
        "demand_not_reviewable",
    )
    async with w.h.db("demands").session() as s:
        count = (await s.execute(text("SELECT count(*) FROM demand_responses"))).scalar_one()
    assert count == 0


async def test_two_members_responding_at_once_make_one_response(world: World) -> None:
    import asyncio

    w = world
    demand = await w.published()
    colleague = w.h.issuer.caller(role="agent", org_id=w.provider.org_id, caps=("enterprise", "provider"))
    answers = await asyncio.gather(*(w.respond(demand["id"], who) for who in (w.provider, colleague) * 3))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5
    assert (await w.call("GET", f"/demands/{demand['id']}")).json()["response_count"] == 1


async def notices_of(w: World, who: Any) -> list[tuple[str, str]]:
    r = await w.call("GET", "/me/notifications", who)
    assert r.status_code == 200, r.text
    return [(n["kind"], n["link"]) for n in r.json()["items"]]


async def test_each_decision_reaches_the_person_who_must_act(world: World) -> None:
    w = world
    demand = await w.submitted()
    did = demand["id"]
    assert ("demand_submitted", f"/api/v1/admin/demands/{did}") in await notices_of(w, w.reviewer)
    assert await notices_of(w, w.finance) == []  # not a finance clerk's business
    await w.call("POST", f"/admin/demands/{did}/return", w.reviewer, json={"reason": "请补充厂房面积"})
    returned = (await w.call("GET", "/me/notifications", w.colleague)).json()["items"][0]
    assert returned["kind"] == "demand_returned" and "请补充厂房面积" in returned["body"]
    await w.call("PUT", f"/me/demands/{did}", w.enterprise, json=w.demand_body())
    await w.call("POST", f"/admin/demands/{did}/approve", w.reviewer)
    assert (await w.respond(did)).status_code == 201
    kinds = [k for k, _ in await notices_of(w, w.enterprise)]
    assert kinds == ["demand_responded", "demand_approved", "demand_returned"]  # newest first
    responded = (await w.call("GET", "/me/notifications", w.enterprise)).json()["items"][0]
    assert "广西科智信息服务有限公司" in responded["body"]
    assert responded["link"] == f"/api/v1/me/demands/{did}/responses"
    assert await notices_of(w, w.other_enterprise) == []


async def test_the_portal_counts_published_demands_for_the_gateway(world: World) -> None:
    """GET /internal/stats: the board's published demands (common.registry's figure)."""
    w = world
    await w.published()
    await w.submitted(name="尚未审核的需求")
    secret = w.h["demands"].runtime.settings.service_token_secret
    headers = {"Authorization": f"Bearer {issue_service_token(secret, 'gateway')}"}
    assert (await w.client.get("/internal/stats")).status_code == 401
    answer = (await w.client.get("/internal/stats", headers=headers)).json()
    assert answer == {"published_demands": 1}
    # the contract the gateway parses it with: every figure, none lost or added
    assert PortalStats.model_validate(answer).model_dump(mode="json") == answer
