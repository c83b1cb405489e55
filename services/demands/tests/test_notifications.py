"""站内通知: the other services' events become notices for the people who must act, once each;
each member reads for themselves; staff notices reach every user of the role."""

from __future__ import annotations

from typing import Any

import pytest
from demands.service import notifications
from sqlalchemy import text

from common.events import ContractSubmitted, RemittanceRecorded
from common.testing.tokens import Caller

from .conftest import World
from .notification_samples import ORDER_NO, Sample, samples
from .test_demands import problem

KINDS = [s.payload.event_type for s in samples("e", "p")]


async def inbox(w: World, who: Caller, **params: Any) -> dict[str, Any]:
    r = await w.call("GET", "/me/notifications", who, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def kinds(w: World, who: Caller) -> list[str]:
    return sorted(n["kind"] for n in (await inbox(w, who))["items"])


async def count(w: World) -> int:
    async with w.h.db("demands").session() as s:
        return int((await s.execute(text("SELECT count(*) FROM notifications"))).scalar_one())


@pytest.mark.parametrize("index", range(len(KINDS)), ids=KINDS)
async def test_each_event_tells_the_members_of_the_party_that_must_act_and_nobody_else(
    world: World, index: int
) -> None:
    w = world
    sample: Sample = samples(str(w.enterprise.org_id), str(w.provider.org_id))[index]
    await w.h.publish(sample.payload, aggregate_id=sample.aggregate_id)
    await w.h.settle()

    told = {
        party: sorted(kind for who, kind in sample.told if who == party)
        for party in ("enterprise", "provider")
    }
    assert await kinds(w, w.enterprise) == told["enterprise"]
    assert await kinds(w, w.colleague) == told["enterprise"]  # an agent of the same enterprise
    assert await kinds(w, w.provider) == told["provider"]
    for nobody in (w.other_enterprise, w.other_provider, w.reviewer, w.finance, w.admin):
        assert (await inbox(w, nobody))["total"] == 0

    who = w.enterprise if told["enterprise"] else w.provider
    page = await inbox(w, who)
    assert page["unread"] == page["total"] >= 1
    item = page["items"][0]
    assert set(item) >= {"id", "kind", "title", "body", "link", "read", "created_at"}
    assert item["read"] is False
    for word in sample.words:
        assert word in item["body"]


async def test_a_redelivered_event_makes_no_second_notice(world: World) -> None:
    w = world
    sample = samples(str(w.enterprise.org_id), str(w.provider.org_id))[0]  # a new order to accept
    doc = await w.h.publish(sample.payload, aggregate_id=sample.aggregate_id)
    await w.h.settle()
    await w.h.redeliver(doc)  # the same envelope, delivered again
    await w.h.settle()
    assert await count(w) == 1
    page = await inbox(w, w.provider)
    assert page["total"] == 1 and page["unread"] == 1
    assert page["items"][0]["body"].startswith("您有新的订单待接单：人才培训服务，订单号 " + ORDER_NO)


def _submitted(w: World, version: int) -> ContractSubmitted:
    return ContractSubmitted(
        order_id="order-1",
        order_no=ORDER_NO,
        contract_id="contract-1",
        contract_version=version,
        enterprise_id=str(w.enterprise.org_id),
        provider_id=str(w.provider.org_id),
        provider_name="广西科智信息服务有限公司",
        product_name="人才培训服务",
        total_fen=5_000,
        subsidy_fen=1_000,
        payable_fen=4_000,
    )


def _recorded(w: World, remittance_id: str, amount_fen: int) -> RemittanceRecorded:
    return RemittanceRecorded(
        order_id="order-1",
        order_no=ORDER_NO,
        remittance_id=remittance_id,
        enterprise_id=str(w.enterprise.org_id),
        provider_id=str(w.provider.org_id),
        amount_fen=amount_fen,
        bank_reference=f"BR-{remittance_id}",
    )


async def test_an_older_fact_of_the_same_kind_is_not_told_after_a_newer_one_but_distinct_facts_are(
    world: World,
) -> None:
    w = world
    # The second version's submission comes first, the first version's after it: only v2 is told.
    for payload, sequence in (
        (_submitted(w, 2), 5),
        (_submitted(w, 1), 3),
        # Two transfers of the same order, the later one delivered first: both must be verified.
        (_recorded(w, "r-2", 3_200), 9),
        (_recorded(w, "r-1", 800), 7),
    ):
        await w.h.publish(payload, aggregate_id="order-1", sequence=sequence)
        await w.h.settle()
    enterprise = (await inbox(w, w.enterprise))["items"]
    assert [n["kind"] for n in enterprise] == ["contract_submitted"]
    assert "第 2 版" in enterprise[0]["body"]
    provider = (await inbox(w, w.provider))["items"]
    assert sorted(n["body"].split("：")[1].split("，")[0] for n in provider) == ["32 元", "8 元"]


async def test_each_member_reads_for_themselves_and_read_all_covers_what_came_before(world: World) -> None:
    w = world
    for version in (1, 2, 3):
        await w.h.publish(_submitted(w, version), aggregate_id=f"order-{version}")
    await w.h.settle()
    page = await inbox(w, w.enterprise)
    assert (page["total"], page["unread"]) == (3, 3)
    newest, middle, _oldest = page["items"]
    assert newest["seq"] > middle["seq"]

    r = await w.call("POST", f"/me/notifications/{middle['id']}/read", w.enterprise)
    assert r.status_code == 200 and r.json()["read"] is True and r.json()["id"] == middle["id"]
    r = await w.call("POST", f"/me/notifications/{middle['id']}/read", w.enterprise)  # again: no change
    assert r.status_code == 200
    page = await inbox(w, w.enterprise)
    assert page["unread"] == 2
    assert [n["read"] for n in page["items"]] == [False, True, False]
    assert (await inbox(w, w.colleague))["unread"] == 3  # the agent's own read state
    unread_only = await inbox(w, w.enterprise, unread="true")
    assert unread_only["total"] == 2 and middle["id"] not in {n["id"] for n in unread_only["items"]}

    # Another organisation's notice does not exist for the caller.
    problem(
        await w.call("POST", f"/me/notifications/{newest['id']}/read", w.other_enterprise),
        404,
        "notification_not_found",
    )
    problem(await w.call("POST", "/me/notifications/nope/read", w.enterprise), 404, "notification_not_found")

    r = await w.call("POST", "/me/notifications/read-all", w.enterprise)
    assert r.status_code == 200, r.text
    assert r.json() == {"unread": 0, "read_through": newest["seq"]}
    assert all(n["read"] for n in (await inbox(w, w.enterprise))["items"])
    assert (await inbox(w, w.colleague))["unread"] == 3

    # What comes after read-all is unread.
    await w.h.publish(_submitted(w, 4), aggregate_id="order-4")
    await w.h.settle()
    page = await inbox(w, w.enterprise)
    assert (page["total"], page["unread"]) == (4, 1)
    assert [n["read"] for n in page["items"]] == [False, True, True, True]
    # Nothing to read: read-all changes nothing and says so.
    r = await w.call("POST", "/me/notifications/read-all", w.other_provider)
    assert r.json() == {"unread": 0, "read_through": 0}


async def test_a_notice_to_a_staff_role_reaches_every_user_of_it_and_administrators(world: World) -> None:
    w = world
    async with w.h.db("demands").transaction() as session:
        await notifications.notify(
            session,
            kind="demand_submitted",
            title="新需求待审核",
            body="广西北软软件股份有限公司提交了需求“植物提取厂房设计”，请审核。",
            link="/api/v1/admin/demands/d-1",
            role="reviewer",
        )
        await notifications.notify(
            session,
            kind="message_replied",
            title="留言已回复",
            body="平台已回复您的留言。",
            link="/api/v1/me/messages",
            user_id=w.enterprise.user_id,
        )
    assert await kinds(w, w.reviewer) == ["demand_submitted"]
    assert await kinds(w, w.admin) == ["demand_submitted"]
    assert await kinds(w, w.finance) == []
    assert await kinds(w, w.enterprise) == ["message_replied"]
    assert await kinds(w, w.colleague) == []  # addressed to the user, not the organisation

    item = (await inbox(w, w.reviewer))["items"][0]
    assert (await w.call("POST", f"/me/notifications/{item['id']}/read", w.reviewer)).status_code == 200
    assert (await inbox(w, w.reviewer))["unread"] == 0
    assert (await inbox(w, w.admin))["unread"] == 1


async def test_notify_refuses_a_notice_without_exactly_one_recipient(world: World) -> None:
    async with world.h.db("demands").session() as session:
        for recipients in ({}, {"user_id": "u", "org_id": "o"}, {"role": "owner"}):
            with pytest.raises(ValueError):
                await notifications.notify(
                    session, kind="x", title="标题", body="正文", link="/api/v1/x", **recipients
                )
