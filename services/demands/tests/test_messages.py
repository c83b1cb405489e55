"""我要留言: a user writes, any staff member replies and closes, the user reads the reply."""

from __future__ import annotations

from sqlalchemy import text

from .conftest import World
from .test_demands import problem


async def test_a_message_and_its_reply(world: World) -> None:
    w = world
    r = await w.call("POST", "/me/messages", w.enterprise, json={"content": "请问服务券过期后能否延期使用？"})
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["status"] == "open" and message["status_label"] == "待回复" and message["reply"] is None

    listing = (await w.call("GET", "/admin/messages", w.finance, params={"status": "open"})).json()
    assert [m["id"] for m in listing["items"]] == [message["id"]]
    assert listing["counts"] == {"all": 1, "open": 1, "replied": 0, "closed": 0}
    seen = listing["items"][0]
    assert seen["org_name"] == "广西北软软件股份有限公司" and seen["author_phone"] == "138****6433"

    r = await w.call(
        "POST", f"/admin/messages/{message['id']}/reply", w.finance, json={"reply": "可在有效期内申请延期。"}
    )
    assert r.status_code == 200 and r.json()["status_label"] == "已回复"
    mine = (await w.call("GET", "/me/messages", w.enterprise)).json()
    assert mine["items"][0]["reply"] == "可在有效期内申请延期。" and mine["items"][0]["replied_at"]

    r = await w.call("POST", f"/admin/messages/{message['id']}/close", w.reviewer)
    assert r.json()["status"] == "closed"
    problem(await w.call("POST", f"/admin/messages/{message['id']}/close", w.reviewer), 409, "message_closed")
    problem(
        await w.call("POST", f"/admin/messages/{message['id']}/reply", w.admin, json={"reply": "补充"}),
        409,
        "message_closed",
    )
    async with w.h.db("demands").session() as s:
        actions = (
            await s.execute(text("SELECT actor_role || ':' || action FROM audit_log ORDER BY id"))
        ).scalars()
        assert list(actions) == ["finance:message.reply", "reviewer:message.close"]


async def test_staff_write_too_and_each_sees_only_their_own(world: World) -> None:
    w = world
    await w.call("POST", "/me/messages", w.provider, json={"content": "服务商留言"})
    staff = await w.call("POST", "/me/messages", w.reviewer, json={"content": "内部测试留言"})
    assert staff.status_code == 201  # any signed-in user writes
    assert [m["content"] for m in (await w.call("GET", "/me/messages", w.provider)).json()["items"]] == [
        "服务商留言"
    ]
    assert (await w.call("GET", "/me/messages", w.enterprise)).json()["total"] == 0


async def test_bad_messages_and_wrong_callers(world: World) -> None:
    w = world
    problem(
        await w.call("POST", "/me/messages", w.enterprise, json={"content": "留" * 501}),
        422,
        "message_too_long",
    )
    problem(await w.call("POST", "/me/messages", w.enterprise, json={"content": "   "}), 422, "message_empty")
    problem(await w.call("POST", "/me/messages", json={"content": "匿名"}), 401, "unauthenticated")
    ok = await w.call("POST", "/me/messages", w.enterprise, json={"content": "留" * 500})
    assert ok.status_code == 201
    mid = ok.json()["id"]
    problem(await w.call("GET", "/admin/messages", w.enterprise), 403, "forbidden_role")
    problem(
        await w.call("POST", f"/admin/messages/{mid}/reply", w.provider, json={"reply": "x"}),
        403,
        "forbidden_role",
    )
    problem(await w.call("GET", "/admin/messages/nope", w.reviewer), 404, "message_not_found")
    assert (await w.call("GET", f"/admin/messages/{mid}", w.reviewer)).json()["status"] == "open"


async def test_the_writer_hears_of_the_reply(world: World) -> None:
    w = world
    mid = (
        await w.call("POST", "/me/messages", w.provider, json={"content": "如何修改服务机构信息？"})
    ).json()["id"]
    await w.call("POST", f"/admin/messages/{mid}/reply", w.reviewer, json={"reply": "在服务机构信息页修改。"})
    items = (await w.call("GET", "/me/notifications", w.provider)).json()["items"]
    assert [(n["kind"], n["read"]) for n in items] == [("message_replied", False)]
    assert "如何修改服务机构信息" in items[0]["body"]
    other_member = w.h.issuer.caller(role="agent", org_id=w.provider.org_id, caps=("enterprise", "provider"))
    assert (await w.call("GET", "/me/notifications", other_member)).json()["items"] == []  # the writer's own
