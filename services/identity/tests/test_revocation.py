"""A right taken away takes effect at once (issue 12 §4): every place in identity that takes a
right away announces it with ``identity.user_access_changed`` in the transaction of the change,
and identity itself refuses the tokens it ended (401 ``token_revoked``) within seconds, on
every route, while the user's other sessions and the tokens issued afterwards go on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.testing.api_client import ApiDriver, Session, random_phone

pytestmark = pytest.mark.broker

EVENT = "identity.user_access_changed"
ADMIN_PHONE, ADMIN_PASSWORD = "13900000002", "Admin-Pass-2024"
STAFF_PASSWORD = "Staff-Pass-2024"
AGENT_URL = "/api/v1/me/organization/agent"


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(
        admin_phone=ADMIN_PHONE, admin_password=ADMIN_PASSWORD, revocation_poll_interval=0.1, **relaxed_sms
    )


@pytest_asyncio.fixture
async def admin(api: ApiDriver) -> Session:
    return await api.login(ADMIN_PHONE, ADMIN_PASSWORD)


@pytest_asyncio.fixture
async def announced(events: Callable[[str], Awaitable[Any]], identity_app: FastAPI) -> Any:
    """The test's own queue of ``identity.user_access_changed`` (bound once identity has
    declared the exchange, before the action)."""
    return await events(EVENT)


def claims(session: Session) -> dict[str, Any]:
    return dict(jwt.decode(session.access_token, options={"verify_signature": False}))


async def refused(
    client: httpx.AsyncClient,
    who: Session,
    path: str = "/api/v1/me",
    within: float = 5.0,
    code: str = "token_revoked",
) -> httpx.Response:
    """Poll ``path`` with ``who``'s token until identity refuses it as revoked."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        r = await client.get(path, headers=who.headers)
        if code == "token_revoked" and r.status_code == 401 and r.json().get("code") == code:  # session ended
            assert r.json()["detail"] == "登录状态已失效，请重新登录"
            assert r.headers["www-authenticate"] == "Bearer"
            return r
        if code == "access_revoked" and r.status_code == 403 and r.json().get("code") == code:  # right taken
            return r
        if loop.time() > deadline:
            raise AssertionError(f"{path} still answers {r.status_code} {r.text} after {within}s")
        await asyncio.sleep(0.05)


async def ok(client: httpx.AsyncClient, who: Session, path: str = "/api/v1/me") -> dict[str, Any]:
    r = await client.get(path, headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def check_event(
    doc: dict[str, Any], *, user_id: str, org_id: str | None, change: str, session_ids: list[str]
) -> datetime:
    assert doc["event_type"] == EVENT and doc["aggregate_id"] == user_id
    payload = doc["payload"]
    assert payload["user_id"] == user_id and payload["org_id"] == org_id
    assert payload["change"] == change
    assert sorted(payload["session_ids"]) == sorted(session_ids)
    return datetime.fromisoformat(payload["not_before"])


async def new_staff(client: httpx.AsyncClient, api: ApiDriver, admin: Session, role: str) -> Session:
    phone = random_phone()
    r = await client.post(
        "/api/v1/admin/staff",
        json={"phone": phone, "name": "王财务", "role": role, "password": STAFF_PASSWORD},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return await api.login(phone, STAFF_PASSWORD)


# --- sessions ------------------------------------------------------------------------------------


async def test_logout_ends_that_sessions_access_token_and_no_other(
    api: ApiDriver, client: httpx.AsyncClient, announced: Any
) -> None:
    first = await api.register()
    second = await api.sms_login(first.phone)
    r = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": first.refresh_token}, headers=first.headers
    )
    assert r.status_code == 204
    doc, _ = await announced.next()
    check_event(
        doc,
        user_id=first.body["user"]["id"],
        org_id=first.body["organization"]["id"],
        change="sessions_revoked",
        session_ids=[claims(first)["sid"]],
    )
    await refused(client, first)
    await refused(client, first, "/api/v1/me/organization")
    # The other device stays signed in.
    assert (await ok(client, second))["user"]["phone"] == first.phone


async def test_a_password_change_ends_the_other_sessions_and_this_one_goes_on(
    api: ApiDriver, client: httpx.AsyncClient, announced: Any
) -> None:
    here = await api.register()
    elsewhere = await api.sms_login(here.phone)
    r = await client.put(
        "/api/v1/me/password", json={"new_password": "Changed-2024-ok"}, headers=here.headers
    )
    assert r.status_code == 204, r.text
    doc, _ = await announced.next()
    check_event(
        doc,
        user_id=here.body["user"]["id"],
        org_id=here.body["organization"]["id"],
        change="sessions_revoked",
        session_ids=[claims(elsewhere)["sid"]],
    )
    await refused(client, elsewhere)
    await asyncio.sleep(0.3)  # several refreshes of identity's copy later
    await ok(client, here)


async def test_a_password_reset_ends_every_token_and_a_new_sign_in_works_at_once(
    api: ApiDriver, client: httpx.AsyncClient, announced: Any
) -> None:
    first = await api.register()
    second = await api.sms_login(first.phone)
    code = await api.sms_code(first.phone, "reset_password")
    r = await client.post(
        "/api/v1/auth/password/reset",
        json={"phone": first.phone, "sms_code": code, "new_password": "Reset-2024-ok"},
    )
    assert r.status_code == 204
    doc, _ = await announced.next()
    not_before = check_event(
        doc,
        user_id=first.body["user"]["id"],
        org_id=first.body["organization"]["id"],
        change="sessions_revoked",
        session_ids=[],
    )
    await refused(client, first)
    await refused(client, second)
    # Signed in again right after, within the same second: the new token is not caught.
    fresh = await api.login(first.phone, "Reset-2024-ok")
    assert claims(fresh)["iat"] > not_before.timestamp()
    await ok(client, fresh)
    await asyncio.sleep(0.3)
    await ok(client, fresh)


async def test_a_reused_refresh_token_ends_its_familys_access_token(
    api: ApiDriver, client: httpx.AsyncClient, announced: Any
) -> None:
    first = await api.register()
    second = await api.refresh(first)
    other = await api.sms_login(first.phone)
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": first.refresh_token})
    assert reuse.status_code == 401 and reuse.json()["code"] == "refresh_token_reused"
    doc, _ = await announced.next()
    check_event(
        doc,
        user_id=first.body["user"]["id"],
        org_id=first.body["organization"]["id"],
        change="sessions_revoked",
        session_ids=[claims(second)["sid"]],
    )
    await refused(client, second)
    await ok(client, other)


# --- staff -----------------------------------------------------------------------------------


async def test_a_deactivated_staff_members_token_is_refused(
    api: ApiDriver, client: httpx.AsyncClient, admin: Session, announced: Any
) -> None:
    clerk = await new_staff(client, api, admin, "finance")
    await ok(client, clerk)
    user_id = claims(clerk)["sub"]
    r = await client.put(f"/api/v1/admin/staff/{user_id}", json={"active": False}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["active"] is False
    doc, _ = await announced.next()
    check_event(doc, user_id=user_id, org_id=None, change="deactivated", session_ids=[])
    await refused(client, clerk, code="access_revoked")
    # Only the deactivation is announced; the administrator goes on.
    await announced.assert_none(0.3)
    await ok(client, admin)


async def test_a_role_change_refuses_the_old_token_and_the_refreshed_one_carries_the_new_role(
    api: ApiDriver, client: httpx.AsyncClient, admin: Session, announced: Any
) -> None:
    clerk = await new_staff(client, api, admin, "finance")
    user_id = claims(clerk)["sub"]
    r = await client.put(f"/api/v1/admin/staff/{user_id}", json={"role": "reviewer"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["role"] == "reviewer"
    doc, _ = await announced.next()
    check_event(doc, user_id=user_id, org_id=None, change="role_changed", session_ids=[])
    await refused(client, clerk, code="access_revoked")
    # The session itself goes on: the next token says reviewer, and it works at once.
    demoted = await api.refresh(clerk)
    assert claims(demoted)["role"] == "reviewer"
    assert (await ok(client, demoted))["user"]["role"] == "reviewer"
    await asyncio.sleep(0.3)
    await ok(client, demoted)
    # Renaming takes nothing away: nothing is announced.
    r = await client.put(f"/api/v1/admin/staff/{user_id}", json={"name": "王审核"}, headers=admin.headers)
    assert r.status_code == 200
    await announced.assert_none(0.3)


# --- agents ----------------------------------------------------------------------------------


def agent_body(phone: str, name: str = "李经办") -> dict[str, Any]:
    from stdnum.cn import ric

    body = "45030219900704123"
    return {"name": name, "id_number": body + ric.calc_check_digit(body + "0"), "phone": phone}


@pytest.mark.parametrize("how", ["removed", "replaced"])
async def test_a_removed_or_replaced_agents_token_is_refused(
    how: str, flows: Any, api: ApiDriver, client: httpx.AsyncClient, announced: Any
) -> None:
    owner, org = await flows.certified()
    phone = random_phone()
    assert (await client.put(AGENT_URL, json=agent_body(phone), headers=owner.headers)).status_code == 200
    agent = await api.sms_login(phone)
    await ok(client, agent, "/api/v1/me/organization")
    if how == "removed":
        r = await client.delete(AGENT_URL, headers=owner.headers)
        assert r.status_code == 204
    else:
        r = await client.put(AGENT_URL, json=agent_body(random_phone(), "王经办"), headers=owner.headers)
        assert r.status_code == 200
    doc, _ = await announced.next()
    check_event(doc, user_id=claims(agent)["sub"], org_id=org["id"], change="agent_removed", session_ids=[])
    await refused(client, agent, code="access_revoked")
    await refused(client, agent, "/api/v1/me/organization", code="access_revoked")
    await ok(client, owner)
