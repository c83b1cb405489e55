"""A right taken away takes effect everywhere within seconds (issue 12 §4), every service its own
process behind the gateway: the outside probe's cases, each tried as the person would try
them. A deactivated finance clerk cannot pay the settlement they could pay a moment before; a
clerk demoted to reviewer no longer lists settlements; a removed agent (经办人) can no longer
order, record a transfer, return a contract nor read the payee's bank account; after logout,
and after a password change, the old access token is refused by identity and by another
service while the user's other session (logout) or own session (password change) goes on.

A right taken away (deactivated, demoted, removed as agent) is 403 ``access_revoked``; an ended
session (logout, password change) is 401 ``token_revoked``. The time from the change to the first refusal is
printed (``-s``): identity's outbox relay, the broker, each service's consumer and its
once-a-second refresh of the revocations it holds in memory."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common.testing.api_client import Session, random_phone
from common.testing.data import valid_resident_id

from .conftest import Platform
from .journey import Journey, Org, eventually, expect, platform_for_module

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(900)]

# "Within seconds": the bound every refusal is waited for (the relay polls every 0.2 s here,
# the services refresh their revocations every second).
WITHIN = 10.0
PASSWORD = "Changed-e2e-2024"


@pytest_asyncio.fixture(scope="module")
async def platform(
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    from common.testing.plugin import require_broker

    url = require_broker(amqp_url_or_none, request)
    async with platform_for_module(postgres_server, url, Path(tmp_path_factory.mktemp("platform"))) as p:
        yield p


@pytest_asyncio.fixture
async def j(platform: Platform) -> AsyncIterator[Journey]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield await Journey.start(platform, client)


RIGHT_TAKEN = (403, "access_revoked")  # deactivated, demoted, removed as agent
SESSION_ENDED = (401, "token_revoked")  # logout, password change


def is_revoked(r: httpx.Response, how: tuple[int, str] = SESSION_ENDED) -> bool:
    return r.status_code == how[0] and r.json().get("code") == how[1]


async def refused(
    what: str,
    request: Callable[[], Awaitable[httpx.Response]],
    since: float | None = None,
    how: tuple[int, str] = SESSION_ENDED,
) -> httpx.Response:
    """Poll a harmless request until the service answering it refuses the token as revoked."""
    r = await eventually(request, lambda r: is_revoked(r, how), what, within=WITHIN)
    assert r.json()["detail"], r.text
    if since is not None:
        print(f"[revocation] {what}: refused {time.monotonic() - since:.2f}s after the change")
    return r


def refused_now(r: httpx.Response, how: tuple[int, str] = SESSION_ENDED) -> None:
    assert is_revoked(r, how), f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"


async def staff_user_id(j: Journey, who: Session) -> str:
    return str(expect(await j.get("/me", who))["user"]["id"])


async def approved_claim(j: Journey) -> tuple[Org, dict[str, Any]]:
    """A completed, fully paid order whose settlement claim (兑付) the provider made and finance
    approved: what a finance clerk pays next. Returns (provider, the approved claim)."""
    enterprise, provider, order, _contract = await j.signed_order(total_fen=7600, deposit_fen=1000)
    oid = order["id"]
    await j.status(enterprise, oid, "awaiting_deposit")
    await j.paid(enterprise, provider, oid, 1000)
    await j.status(enterprise, oid, "awaiting_service")
    expect(await j.post(f"/orders/{oid}/start-service", provider))
    await j.status(enterprise, oid, "in_service")
    expect(await j.post(f"/orders/{oid}/complete-service", provider))
    await j.status(enterprise, oid, "awaiting_balance")
    await j.paid(enterprise, provider, oid, 2800)
    await j.status(enterprise, oid, "completed")

    async def claims() -> httpx.Response:
        return await j.get("/me/settlements", provider)

    listed = await eventually(
        claims, lambda r: any(i["order_id"] == oid for i in r.json()["items"]), "the settlement claim"
    )
    claim = next(i for i in listed.json()["items"] if i["order_id"] == oid)
    files = {
        "invoice_file_ids": [await j.file(provider, "发票.pdf")],
        "receipt_file_ids": [await j.file(provider, "汇款凭证.pdf")],
        "proof_file_ids": [await j.file(provider, "服务证明.pdf")],
    }
    expect(await j.post(f"/settlements/{claim['id']}/claim", provider, files))
    approved = expect(await j.post(f"/admin/settlements/{claim['id']}/approve", j.finance, {}))
    assert approved["state"] == "approved", approved
    return provider, approved


async def claim_state(j: Journey, claim_id: str) -> str:
    items = expect(await j.get("/admin/settlements", j.finance, page_size=100))["items"]
    return str(next(i for i in items if i["id"] == claim_id)["state"])


# --- staff ---------------------------------------------------------------------------------------


async def test_a_deactivated_finance_clerk_can_no_longer_pay_a_settlement(j: Journey) -> None:
    _provider, claim = await approved_claim(j)
    clerk = await j.staff("finance", "财务员丙")
    expect(await j.get("/admin/settlements", clerk))  # the clerk's token works on payments

    clerk_id = await staff_user_id(j, clerk)
    since = time.monotonic()
    expect(await j.put(f"/admin/staff/{clerk_id}", j.admin, {"active": False}))

    await refused(
        "payments refuses the deactivated clerk",
        lambda: j.get("/admin/settlements", clerk),
        since,
        how=RIGHT_TAKEN,
    )
    paid = await j.post(f"/admin/settlements/{claim['id']}/pay", clerk, {"payout_reference": "DF-CLERK"})
    refused_now(paid, RIGHT_TAKEN)
    assert await claim_state(j, claim["id"]) == "approved"
    await refused("identity refuses the deactivated clerk", lambda: j.get("/me", clerk), how=RIGHT_TAKEN)
    await refused(
        "the gateway's audit log refuses the deactivated clerk",
        lambda: j.get("/admin/audit-log", clerk),
        how=RIGHT_TAKEN,
    )

    # Another finance clerk still pays it, once.
    done = expect(
        await j.post(
            f"/admin/settlements/{claim['id']}/pay", j.finance, {"payout_reference": "DF-" + claim["id"][:8]}
        )
    )
    assert done["state"] == "paid"
    await j.invariants_hold()


async def test_a_clerk_demoted_to_reviewer_no_longer_lists_settlements(j: Journey) -> None:
    clerk = await j.staff("finance", "财务员丁")
    expect(await j.get("/admin/settlements", clerk))
    clerk_id = await staff_user_id(j, clerk)
    since = time.monotonic()
    expect(await j.put(f"/admin/staff/{clerk_id}", j.admin, {"role": "reviewer"}))

    await refused(
        "payments refuses the demoted clerk's token",
        lambda: j.get("/admin/settlements", clerk),
        since,
        how=RIGHT_TAKEN,
    )
    # Signed in again (the session goes on), the token says reviewer: settlements are not theirs.
    reviewer = await j.api.refresh(clerk)
    r = await j.get("/admin/settlements", reviewer)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role", r.text
    expect(await j.get("/admin/quota-applications", reviewer))  # what a reviewer does works


# --- agents --------------------------------------------------------------------------------------


async def test_a_removed_agent_can_no_longer_order_remit_return_a_contract_or_read_the_payees_account(
    j: Journey,
) -> None:
    enterprise, provider, signed_order, _signed = await j.signed_order(total_fen=7600, deposit_fen=1000)
    oid = signed_order["id"]
    await j.status(enterprise, oid, "awaiting_deposit")
    product_id = signed_order["product_id"]
    # A second order whose contract the provider has submitted: the enterprise's to agree or return.
    second = await j.order(enterprise, product_id)
    expect(await j.post(f"/orders/{second['id']}/accept", provider))
    draft = await j.contract(provider, second["id"])
    terms = {"total_fen": 7600, "deposit_fen": 1000, "terms": "甲方委托乙方提供专利分级评价服务。"}
    expect(await j.put(f"/contracts/{draft['id']}", provider, terms))
    expect(await j.post(f"/contracts/{draft['id']}/submit", provider))

    phone = random_phone()
    body = {"name": "李经办", "id_number": valid_resident_id(), "phone": phone}
    expect(await j.put("/me/organization/agent", enterprise, body))
    agent = await j.api.sms_login(phone)
    # While designated, the agent acts for the enterprise on every service.
    plan = expect(await j.get(f"/orders/{oid}/payment", agent))
    assert plan["payee"]["account_name"] == provider.name, plan
    assert expect(await j.get(f"/orders/{second['id']}/contract", agent))["state"] == "pending_review"
    orders_before = expect(await j.get("/me/orders", agent))["total"]

    since = time.monotonic()
    r = await j.client.delete("/api/v1/me/organization/agent", headers=enterprise.headers)
    assert r.status_code == 204, r.text

    # Within seconds every service refuses the agent's token (each hears of it on its own).
    await refused("identity refuses the removed agent", lambda: j.get("/me", agent), since, how=RIGHT_TAKEN)
    await refused(
        "orders refuses the removed agent", lambda: j.get("/me/orders", agent), since, how=RIGHT_TAKEN
    )
    await refused(
        "payments refuses the removed agent",
        lambda: j.get(f"/orders/{oid}/payment", agent),
        since,
        how=RIGHT_TAKEN,
    )
    await refused(
        "contracts refuses the removed agent",
        lambda: j.get(f"/orders/{second['id']}/contract", agent),
        since,
        how=RIGHT_TAKEN,
    )
    await refused(
        "quota refuses the removed agent", lambda: j.get("/me/vouchers", agent), since, how=RIGHT_TAKEN
    )
    await refused(
        "catalog refuses the removed agent", lambda: j.get("/me/favorites", agent), since, how=RIGHT_TAKEN
    )

    refused_now(
        await j.post(
            "/orders",
            agent,
            {"product_id": product_id, "use_voucher": True},
            **{"Idempotency-Key": str(uuid.uuid4())},
        ),
        RIGHT_TAKEN,
    )
    remittance = {
        "amount_fen": 1000,
        "bank_reference": "HX" + uuid.uuid4().hex[:12].upper(),
        "payer_account": "6228480000000000001",
    }
    refused_now(
        await j.post(
            f"/orders/{oid}/remittances", agent, remittance, **{"Idempotency-Key": str(uuid.uuid4())}
        ),
        RIGHT_TAKEN,
    )
    refused_now(
        await j.post(f"/contracts/{draft['id']}/return", agent, {"reason": "经办人退回"}), RIGHT_TAKEN
    )
    refused_now(await j.get(f"/orders/{oid}/payment", agent), RIGHT_TAKEN)

    # Nothing the agent tried happened.
    assert expect(await j.get("/me/orders", enterprise))["total"] == orders_before
    assert expect(await j.get(f"/orders/{oid}/payment", enterprise))["remittances"] == []
    assert expect(await j.get(f"/orders/{second['id']}/contract", enterprise))["state"] == "pending_review"
    # The owner goes on.
    expect(await j.get("/me/vouchers", enterprise))
    await j.invariants_hold()


# --- sessions ------------------------------------------------------------------------------------


async def test_after_logout_the_old_access_token_is_refused_by_identity_and_by_another_service(
    j: Journey,
) -> None:
    org = await j.organisation("广西梧州某某陶瓷有限公司")
    other_device = await j.api.sms_login(org.session.phone)
    leaving = org.session
    expect(await j.get("/me/vouchers", leaving))

    since = time.monotonic()
    r = await j.client.post(
        "/api/v1/auth/logout", json={"refresh_token": leaving.refresh_token}, headers=leaving.headers
    )
    assert r.status_code == 204, r.text

    await refused("identity refuses the logged-out token", lambda: j.get("/me", leaving), since)
    await refused("quota refuses the logged-out token", lambda: j.get("/me/vouchers", leaving), since)
    await refused("orders refuses the logged-out token", lambda: j.get("/me/orders", leaving), since)
    # The same person's other device is still signed in, everywhere.
    expect(await j.get("/me", other_device))
    expect(await j.get("/me/vouchers", other_device))
    expect(await j.get("/me/orders", other_device))


async def test_after_a_password_change_the_other_sessions_token_is_refused_by_identity_and_by_another_service(
    j: Journey,
) -> None:
    org = await j.organisation("广西钦州某某石化设备有限公司")
    here = org.session
    elsewhere = await j.api.sms_login(here.phone)
    expect(await j.get("/me/orders", elsewhere))

    since = time.monotonic()
    r = await j.put("/me/password", here, {"new_password": PASSWORD})
    assert r.status_code == 204, r.text

    await refused("identity refuses the other session's token", lambda: j.get("/me", elsewhere), since)
    await refused("orders refuses the other session's token", lambda: j.get("/me/orders", elsewhere), since)
    await refused("quota refuses the other session's token", lambda: j.get("/me/vouchers", elsewhere), since)
    # The session that changed the password goes on; the new password signs in.
    expect(await j.get("/me", here))
    expect(await j.get("/me/orders", here))
    again = await j.api.login(here.phone, PASSWORD)
    expect(await j.get("/me/vouchers", again))
