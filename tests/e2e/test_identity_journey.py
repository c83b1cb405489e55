"""The manual's first journeys (注册 → 登录 → 企业信息认证 → 指定经办人 → 支付认证 → 安全设置),
walked through the gateway with identity and the gateway as separate processes on the real
PostgreSQL and RabbitMQ; then staff suspend and restore the organisation."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aio_pika
import httpx
import pytest

from common.testing.api_client import ApiDriver, random_phone
from common.testing.data import invalid_uscc, valid_resident_id, valid_uscc

from .conftest import ADMIN_PASSWORD, ADMIN_PHONE, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


class EventTap:
    """A queue of the test's own, bound to identity's events on the platform's exchange."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.queue: aio_pika.abc.AbstractQueue | None = None

    async def __aenter__(self) -> EventTap:
        self.connection = await aio_pika.connect(self.platform.rabbit.url)
        channel = await self.connection.channel()
        exchange = await channel.get_exchange(self.platform.rabbit.exchange, ensure=True)
        self.queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await self.queue.bind(exchange, routing_key="identity.#")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def until(self, event_type: str, org_id: str, within: float = 15) -> tuple[dict[str, Any], str]:
        assert self.queue is not None
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            message = await self.queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            body = json.loads(message.body)
            if body["event_type"] == event_type and body["payload"].get("org_id") == org_id:
                return body, str(message.message_id)
        raise AssertionError(f"no {event_type} for {org_id} within {within}s")


def certification(code: str, uscc: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "role": "enterprise",
        "name": "广西柳州某某汽车零部件有限公司",
        "uscc": uscc,
        "legal_rep_name": "王五",
        "legal_rep_id_type": "resident_id",
        "legal_rep_id_number": valid_resident_id(),
        "sms_code": code,
        "agreed": True,
    }
    body.update(overrides)
    return body


async def test_newcomer_registers_certifies_and_signs_in_through_the_gateway(platform: Platform) -> None:
    async with (
        httpx.AsyncClient(base_url=platform.gateway_url, timeout=20) as client,
        EventTap(platform) as tap,
    ):
        api = ApiDriver(client)

        # 注册: captcha -> SMS code -> register (which signs in).
        phone = random_phone()
        owner = await api.register(phone, "广西柳州某某汽车零部件有限公司")
        assert owner.body["user"]["name"] == f"用户{phone[-4:]}"
        org_id = owner.body["organization"]["id"]

        # 验证码登录.
        owner = await api.sms_login(phone)
        me = (await client.get("/api/v1/me", headers=owner.headers)).json()
        assert me["organization"]["certified"] is False and me["organization"]["capabilities"] == []

        # 企业信息认证: an invalid USCC, then a valid one, then another account with the taken one.
        code = await api.sms_code(phone, "certify")
        bad = await client.post(
            "/api/v1/me/organization/certification",
            json=certification(code, invalid_uscc()),
            headers=owner.headers,
        )
        assert bad.status_code == 422
        assert any(e["field"] == "uscc" for e in bad.json()["errors"])
        assert "校验位" in bad.json()["detail"]
        uscc = valid_uscc()
        ok = await client.post(
            "/api/v1/me/organization/certification", json=certification(code, uscc), headers=owner.headers
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["organization"]["certified"] is True
        me = (await client.get("/api/v1/me", headers=owner.headers)).json()
        assert me["organization"]["uscc"] == uscc
        assert "enterprise" in me["organization"]["capabilities"]
        event, message_id = await tap.until("identity.organization_certified", org_id)
        assert event["payload"] == {
            "org_id": org_id,
            "name": "广西柳州某某汽车零部件有限公司",
            "uscc": uscc,
            "kind": "enterprise",
        }
        assert message_id == event["event_id"]

        rival = await api.register(random_phone(), "另一家公司")
        rival_code = await api.sms_code(rival.phone, "certify")
        taken = await client.post(
            "/api/v1/me/organization/certification",
            json=certification(rival_code, uscc, name="另一家公司"),
            headers=rival.headers,
        )
        assert taken.status_code == 409 and taken.json()["code"] == "uscc_taken"
        assert "申诉" in taken.json()["detail"]

        # The fresh claims: a refreshed token carries the enterprise capability.
        owner = await api.refresh(owner)

        # 指定经办人: the agent's phone then signs in to the same organisation.
        agent_phone = random_phone()
        put = await client.put(
            "/api/v1/me/organization/agent",
            json={"name": "赵六", "id_number": valid_resident_id("19900101"), "phone": agent_phone},
            headers=owner.headers,
        )
        assert put.status_code == 200, put.text
        agent = await api.sms_login(agent_phone)
        agent_me = (await client.get("/api/v1/me", headers=agent.headers)).json()
        assert agent_me["user"]["role"] == "agent"
        assert agent_me["organization"]["id"] == org_id

        # 支付认证: the bank account, and its event.
        account = {
            "account_name": "广西柳州某某汽车零部件有限公司",
            "bank_name": "中国工商银行",
            "bank_region": "广西壮族自治区柳州市",
            "branch_name": "中国工商银行柳州分行营业部",
            "account_number": "6222021234567890123",
        }
        saved = await client.put("/api/v1/me/organization/bank-account", json=account, headers=owner.headers)
        assert saved.status_code == 200, saved.text
        got = (await client.get("/api/v1/me/organization/bank-account", headers=owner.headers)).json()
        assert got["bank_name"] == "中国工商银行"
        event, _ = await tap.until("identity.bank_account_changed", org_id)
        assert event["payload"]["account_number"] == "6222021234567890123"

        # 安全设置: set a password, then sign in with it.
        assert (
            await client.put(
                "/api/v1/me/password", json={"new_password": "Liuzhou-2024"}, headers=owner.headers
            )
        ).status_code == 204
        owner = await api.login(phone, "Liuzhou-2024")

        # Refresh rotates; presenting a spent refresh token again ends the whole family.
        rotated = await api.refresh(owner)
        reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
        assert reuse.status_code == 401 and reuse.json()["code"] == "refresh_token_reused"
        after = await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated.refresh_token})
        assert after.status_code == 401

        # Logout ends a fresh session.
        fresh = await api.login(phone, "Liuzhou-2024")
        out = await client.post(
            "/api/v1/auth/logout", json={"refresh_token": fresh.refresh_token}, headers=fresh.headers
        )
        assert out.status_code == 204
        assert (
            await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh.refresh_token})
        ).status_code == 401

        # Staff suspend the organisation, then restore it.
        admin = await api.login(ADMIN_PHONE, ADMIN_PASSWORD)
        owner = await api.login(phone, "Liuzhou-2024")
        found = await client.get("/api/v1/admin/organizations", params={"q": uscc}, headers=admin.headers)
        assert found.status_code == 200 and found.json()["items"][0]["id"] == org_id
        forbidden = await client.post(
            f"/api/v1/admin/organizations/{org_id}/suspend",
            json={"reason": "自己停用自己"},
            headers=owner.headers,
        )
        assert forbidden.status_code == 403
        suspended = await client.post(
            f"/api/v1/admin/organizations/{org_id}/suspend",
            json={"reason": "涉嫌虚假材料，暂停核查"},
            headers=admin.headers,
        )
        assert suspended.status_code == 200, suspended.text
        me = (await client.get("/api/v1/me", headers=owner.headers)).json()
        assert me["organization"]["suspended"] is True
        blocked = await client.put(
            "/api/v1/me/organization/bank-account", json=account, headers=owner.headers
        )
        assert blocked.status_code == 403 and blocked.json()["code"] == "organization_suspended"
        event, _ = await tap.until("identity.organization_suspended", org_id)
        assert event["payload"]["reason"] == "涉嫌虚假材料，暂停核查"

        restored = await client.post(
            f"/api/v1/admin/organizations/{org_id}/restore",
            json={"reason": "核查无误"},
            headers=admin.headers,
        )
        assert restored.status_code == 200
        assert (await client.get("/api/v1/me", headers=owner.headers)).json()["organization"][
            "suspended"
        ] is False
        await tap.until("identity.organization_restored", org_id)

        audit = await client.get("/api/v1/admin/audit-log", headers=admin.headers)
        assert audit.status_code == 200
        assert audit.json()["stale"] == [], "every service's audit feed answered the gateway"
        actions = [(e["action"], e["target_id"]) for e in audit.json()["items"]]
        assert any(target == org_id and "suspend" in action for action, target in actions)
        assert any(target == org_id and "restore" in action for action, target in actions)

    # No process logged a password, an SMS code or a token along the way.
    logs = platform.processes.log_text()
    assert "Liuzhou-2024" not in logs and ADMIN_PASSWORD not in logs
    assert owner.refresh_token not in logs and owner.access_token not in logs
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", logs)


async def test_gateway_rejects_before_the_service_sees_it(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10) as client:
        r = await client.get("/api/v1/me")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert (await client.get("/internal/stats")).status_code == 404
        r = await client.post("/api/v1/sms-codes", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "malformed_json"
        stats = (await client.get("/api/v1/portal/stats")).json()
        # Every service of the registry runs, so every figure is filled (a service that is
        # down is marked stale: gateway/tests/test_gateway.py::test_portal_stats_fill_what_they_can_and_mark_the_rest_stale).
        assert stats["enterprises"] == 0 and stats["stale"] == []
