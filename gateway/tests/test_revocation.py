"""The gateway's own staff route (the composed audit log) refuses a staff member identity has
taken the right away from, within seconds, like every service (issue 12 §4): the gateway
keeps no copy of the revoked tokens, so it asks identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.testing.api_client import ApiDriver, random_phone
from common.testing.rabbit import RabbitNamespace
from identity.config import Settings as IdentitySettings
from identity.main import create_app as create_identity

pytestmark = pytest.mark.broker

ADMIN_PHONE, ADMIN_PASSWORD = "13900000003", "Admin-Pass-2024"
STAFF_PASSWORD = "Staff-Pass-2024"


@pytest_asyncio.fixture
async def identity_with_admin(
    fresh_db: Callable[[str], Awaitable[str]], rabbit: RabbitNamespace, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    settings = IdentitySettings(
        environment="development",
        database_url=await fresh_db("identity"),
        amqp_url=rabbit.url,
        bus_exchange=rabbit.exchange,
        bus_queue_prefix=rabbit.prefix,
        storage_url=str(tmp_path / "files"),
        log_json=False,
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        sms_resend_seconds=0,
        admin_phone=ADMIN_PHONE,
        admin_password=ADMIN_PASSWORD,
        revocation_poll_interval=0.05,
    )
    app = create_identity(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_deactivated_staff_member_is_refused_the_composed_audit_log(
    identity_with_admin: FastAPI, make_gateway: Any
) -> None:
    _app, client = await make_gateway({"identity": identity_with_admin})
    api = ApiDriver(client)
    admin = await api.login(ADMIN_PHONE, ADMIN_PASSWORD)
    phone = random_phone()
    r = await client.post(
        "/api/v1/admin/staff",
        json={"phone": phone, "name": "王审核", "role": "reviewer", "password": STAFF_PASSWORD},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    reviewer = await api.login(phone, STAFF_PASSWORD)
    assert (await client.get("/api/v1/admin/audit-log", headers=reviewer.headers)).status_code == 200

    r = await client.put(
        f"/api/v1/admin/staff/{r.json()['id']}", json={"active": False}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        r = await client.get("/api/v1/admin/audit-log", headers=reviewer.headers)
        if r.status_code == 401 or (r.status_code == 403 and r.json()["code"] == "access_revoked"):
            break
        assert asyncio.get_running_loop().time() < deadline, f"still {r.status_code} {r.text}"
        await asyncio.sleep(0.05)
    # Identity's own answer: the account is gone (its row), or the right taken away (its copy).
    assert r.json()["code"] in ("unauthenticated", "token_revoked", "access_revoked"), r.text
    # The administrator reads it as before, and sees the deactivation.
    r = await client.get("/api/v1/admin/audit-log", headers=admin.headers, params={"action": "staff.updated"})
    assert r.status_code == 200 and r.json()["total"] == 1, r.text


async def test_identity_out_of_reach_is_a_503_not_a_pass(fresh_db: Callable[[str], Awaitable[str]]) -> None:
    from common.testing.tokens import TestIssuer
    from gateway.main import create_app
    from gateway.proxy import Upstreams

    from .conftest import gateway_settings

    async def unreachable(scope: Any, receive: Any, send: Any) -> None:
        raise httpx.ConnectError("identity is down")

    issuer = TestIssuer()
    app = create_app(
        gateway_settings(await fresh_db("gateway")),
        upstreams=Upstreams.in_process({"identity": unreachable}),
        key_set=issuer.keys,
    )
    staff = issuer.caller(role="administrator")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
            r = await c.get("/api/v1/admin/audit-log", headers=staff.headers)
    assert r.status_code == 503 and r.json()["code"] == "service_unavailable", r.text
