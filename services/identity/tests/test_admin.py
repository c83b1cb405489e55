"""Staff routes through identity's API: organisations, suspension, staff accounts, and the
audit feed identity gives the gateway (which serves staff the composed audit log)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from common.auth import issue_service_token
from common.reads import AuditFeed, OrganizationFacts, PortalStats
from common.settings import DEV_SERVICE_TOKEN_SECRET
from common.testing.api_client import ApiDriver, Session, random_phone
from common.testing.data import LOOSE_FLAGS

pytestmark = pytest.mark.broker

ADMIN_PHONE, ADMIN_PASSWORD = "13900000001", "Admin-Pass-2024"
STAFF_PASSWORD = "Staff-Pass-2024"


@pytest_asyncio.fixture
async def identity_app(make_identity: Any, relaxed_sms: dict[str, Any]) -> FastAPI:
    return await make_identity(admin_phone=ADMIN_PHONE, admin_password=ADMIN_PASSWORD, **relaxed_sms)


@pytest_asyncio.fixture
async def admin(api: ApiDriver) -> Session:
    return await api.login(ADMIN_PHONE, ADMIN_PASSWORD)


async def new_staff(
    client: httpx.AsyncClient, api: ApiDriver, admin: Session, role: str, name: str = "王审核"
) -> tuple[Session, dict[str, Any]]:
    phone = random_phone()
    r = await client.post(
        "/api/v1/admin/staff",
        json={"phone": phone, "name": name, "role": role, "password": STAFF_PASSWORD},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return await api.login(phone, STAFF_PASSWORD), r.json()


def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_service_token(DEV_SERVICE_TOKEN_SECRET, 'gateway')}"}


async def audit_feed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """identity's audit log as the gateway reads it (newest first) to compose the staff view."""
    r = await client.get("/internal/audit-log", params=params, headers=service_headers())
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


# --- organisations -----------------------------------------------------------------------------


async def test_staff_search_organisations(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    _a, org_a = await flows.certified(name="广西柳州重型机械有限公司")
    _b, org_b = await flows.certified(name="广西桂林电子科技有限公司")
    await api.register(enterprise_name="广西未认证机械厂")
    reviewer, _ = await new_staff(client, api, admin, "reviewer")

    async def search(**params: Any) -> dict[str, Any]:
        r = await client.get("/api/v1/admin/organizations", params=params, headers=reviewer.headers)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    everything = await search()
    assert everything["total"] == 3 and everything["page"] == 1 and everything["page_size"] == 20
    by_name = await search(q="机械")
    assert {o["name"] for o in by_name["items"]} == {"广西柳州重型机械有限公司", "广西未认证机械厂"}
    by_uscc = await search(q=org_b["uscc"][4:12].lower())
    assert [o["id"] for o in by_uscc["items"]] == [org_b["id"]]
    enterprises = await search(capability="enterprise")
    assert {o["id"] for o in enterprises["items"]} == {org_a["id"], org_b["id"]}
    assert (await search(capability="provider"))["total"] == 0
    assert (await search(q="%"))["total"] == 0  # a wildcard typed is a character searched for
    page = await search(page=2, page_size=2)
    assert page["total"] == 3 and len(page["items"]) == 1
    item = next(o for o in enterprises["items"] if o["id"] == org_a["id"])
    assert "********" in item["legal_rep_id_number"]
    assert item["certified"] is True and item["capabilities"] == ["enterprise"]

    owner = await api.register()
    r = await client.get("/api/v1/admin/organizations", headers=owner.headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    assert (await client.get("/api/v1/admin/organizations")).status_code == 401
    r = await client.get("/api/v1/admin/organizations", params={"page_size": 1000}, headers=admin.headers)
    assert r.status_code == 422


async def test_staff_open_one_organisation_by_id(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    _owner, org = await flows.certified(name="广西梧州陶瓷有限公司")
    reviewer, _ = await new_staff(client, api, admin, "reviewer")
    r = await client.get(f"/api/v1/admin/organizations/{org['id']}", headers=reviewer.headers)
    assert r.status_code == 200, r.text
    one = r.json()
    listed = (
        await client.get("/api/v1/admin/organizations", params={"q": "梧州"}, headers=reviewer.headers)
    ).json()["items"]
    assert one == listed[0] and one["name"] == "广西梧州陶瓷有限公司"
    assert "********" in one["legal_rep_id_number"]

    r = await client.get("/api/v1/admin/organizations/no-such-org", headers=reviewer.headers)
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    outsider = await api.register()
    r = await client.get(f"/api/v1/admin/organizations/{org['id']}", headers=outsider.headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"


async def test_suspension_stops_new_business_until_restored(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session, events: Any
) -> None:
    owner, org = await flows.certified()
    suspended_probe = await events("identity.organization_suspended")
    restored_probe = await events("identity.organization_restored")
    url = f"/api/v1/admin/organizations/{org['id']}"

    r = await client.post(f"{url}/suspend", json={"reason": "合同纠纷，暂停业务"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["suspended"] is True and r.json()["suspended_reason"] == "合同纠纷，暂停业务"
    event, message = await suspended_probe.next()
    assert message.message_id == event["event_id"]
    assert event["payload"] == {"org_id": org["id"], "reason": "合同纠纷，暂停业务"}

    r = await client.post(f"{url}/suspend", json={"reason": "again"}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "already_suspended"
    await suspended_probe.assert_none()

    # The organisation sees it; its token (issued before) does not matter: its row does.
    me = (await client.get("/api/v1/me", headers=owner.headers)).json()
    assert me["organization"]["suspended"] is True
    bank = {
        "account_name": org["name"],
        "bank_name": "中国银行",
        "bank_region": "广西壮族自治区南宁市",
        "branch_name": "中国银行南宁分行营业部",
        "account_number": "6216600000000001",
    }
    agent = {
        "name": "李经办",
        "id_number": "H12345678",
        "id_type": "hk_macao_tw_permit",
        "phone": random_phone(),
    }
    for method, path, body in [
        ("PUT", "/api/v1/me/organization/bank-account", bank),
        ("PUT", "/api/v1/me/organization/agent", agent),
        ("POST", "/api/v1/me/identity-verifications", {"purpose": "seal"}),
    ]:
        r = await client.request(method, path, json=body, headers=owner.headers)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["code"] == "organization_suspended"
        assert r.json()["reason"] == "合同纠纷，暂停业务"
    assert (
        await client.get("/api/v1/me/organization/bank-account", headers=owner.headers)
    ).status_code == 404

    r = await client.post(f"{url}/restore", json={"reason": "纠纷已解决"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["suspended"] is False and r.json()["suspended_reason"] is None
    event, _ = await restored_probe.next()
    assert event["payload"] == {"org_id": org["id"], "reason": "纠纷已解决"}
    r = await client.post(f"{url}/restore", json={"reason": "again"}, headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "not_suspended"
    r = await client.put("/api/v1/me/organization/bank-account", json=bank, headers=owner.headers)
    assert r.status_code == 200

    # Both decisions are in the audit log, with who, when and why.
    log = await audit_feed(client)
    actions = [(e["action"], e["target_id"], e["reason"]) for e in log]
    assert ("organization.restored", org["id"], "纠纷已解决") in actions
    assert ("organization.suspended", org["id"], "合同纠纷，暂停业务") in actions
    assert actions.index(("organization.restored", org["id"], "纠纷已解决")) < actions.index(
        ("organization.suspended", org["id"], "合同纠纷，暂停业务")
    )  # newest first
    entry = log[0]
    assert entry["service"] == "identity" and entry["actor_role"] == "administrator" and entry["at"]


async def test_other_services_read_an_organisation_as_it_is_now_with_a_service_token(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    """GET /internal/organizations/{id}: what a service's copy (common.orgs) holds, read at
    request time when the copy is behind the caller's token."""
    owner, org = await flows.certified(name="广西柳州重型机械有限公司")
    url = f"/internal/organizations/{org['id']}"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=owner.headers)).status_code == 401  # a user's token is no service's
    r = await client.get(url, headers=service_headers())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "org_id": org["id"],
        "name": "广西柳州重型机械有限公司",
        "uscc": org["uscc"],
        "kind": "enterprise",
        "certified": True,
        "provider": False,
        "suspended": False,
        "suspended_reason": None,
        "bank_account": False,
    }
    # the contract common.orgs parses it with: every field, none lost or added
    assert OrganizationFacts.model_validate(r.json()).model_dump(mode="json") == r.json()
    await client.put(
        "/api/v1/me/organization/bank-account",
        json={
            "account_name": org["name"],
            "bank_name": "中国工商银行",
            "bank_region": "广西壮族自治区南宁市",
            "branch_name": "中国工商银行南宁民族大道支行",
            "account_number": "6222021234567890123",
        },
        headers=owner.headers,
    )
    assert (await client.get(url, headers=service_headers())).json()["bank_account"] is True  # 支付认证
    await client.post(
        f"/api/v1/admin/organizations/{org['id']}/suspend", json={"reason": "合同纠纷"}, headers=admin.headers
    )
    r = await client.get(url, headers=service_headers())
    assert (r.json()["suspended"], r.json()["suspended_reason"]) == (True, "合同纠纷")

    fresh = await api.register()  # registered, not certified yet
    me = (await client.get("/api/v1/me", headers=fresh.headers)).json()
    r = await client.get(f"/internal/organizations/{me['organization']['id']}", headers=service_headers())
    assert (r.json()["certified"], r.json()["uscc"]) == (False, None)
    missing = await client.get(
        "/internal/organizations/00000000-0000-0000-0000-000000000000", headers=service_headers()
    )
    assert missing.status_code == 404 and missing.json()["code"] == "organization_not_found"


async def test_the_portal_counts_certified_enterprises_for_the_gateway(
    flows: Any, client: httpx.AsyncClient
) -> None:
    """GET /internal/stats: 已有 N 家企业入驻平台 / N 家服务机构 (common.registry's figures)."""
    assert (await client.get("/internal/stats")).status_code == 401
    before = (await client.get("/internal/stats", headers=service_headers())).json()
    await flows.certified(name="广西梧州制造有限公司")
    answer = (await client.get("/internal/stats", headers=service_headers())).json()
    assert answer == {"enterprises": before["enterprises"] + 1, "providers": before["providers"]}
    # the contract the gateway parses it with: every figure, none lost or added
    assert PortalStats.model_validate(answer).model_dump(mode="json") == answer


async def test_a_suspended_organisation_cannot_certify(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    owner = await api.register()
    org_id = (await client.get("/api/v1/me", headers=owner.headers)).json()["organization"]["id"]
    r = await client.post(
        f"/api/v1/admin/organizations/{org_id}/suspend", json={"reason": "虚假注册"}, headers=admin.headers
    )
    assert r.status_code == 200
    r = await flows.certify(owner)
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert (await client.get("/api/v1/me/organization", headers=owner.headers)).json()["certified"] is False


async def test_only_administrators_suspend_and_a_reason_is_required(
    flows: Any, client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    _owner, org = await flows.certified()
    reviewer, _ = await new_staff(client, api, admin, "reviewer")
    url = f"/api/v1/admin/organizations/{org['id']}/suspend"
    r = await client.post(url, json={"reason": "x"}, headers=reviewer.headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}):
        r = await client.post(url, json=body, headers=admin.headers)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = await client.post(
        "/api/v1/admin/organizations/00000000-0000-0000-0000-000000000000/suspend",
        json={"reason": "x"},
        headers=admin.headers,
    )
    assert r.status_code == 404
    listed = (
        await client.get("/api/v1/admin/organizations", params={"suspended": True}, headers=admin.headers)
    ).json()
    assert listed["total"] == 0
    # Nothing was audited for the refusals (only the reviewer's creation is there).
    assert [e["action"] for e in await audit_feed(client)] == ["staff.created"]


# --- staff accounts ----------------------------------------------------------------------------


async def test_administrators_manage_staff_accounts(
    client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    reviewer, created = await new_staff(client, api, admin, "reviewer", "王审核")
    assert created["role"] == "reviewer" and created["active"] is True and created["has_password"] is True
    me = (await client.get("/api/v1/me", headers=reviewer.headers)).json()
    assert me["user"]["role"] == "reviewer" and me["organization"] is None
    r = await client.get("/api/v1/me/organization", headers=reviewer.headers)
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    # Staff accounts are the administrators' business.
    r = await client.get("/api/v1/admin/staff", headers=reviewer.headers)
    assert r.status_code == 403

    listed = (await client.get("/api/v1/admin/staff", headers=admin.headers)).json()
    assert {s["role"] for s in listed["items"]} == {"administrator", "reviewer"} and listed["total"] == 2

    r = await client.put(
        f"/api/v1/admin/staff/{created['id']}",
        json={"role": "finance", "name": "王财务"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.json()["role"] == "finance" and r.json()["name"] == "王财务"
    assert (await api.refresh(reviewer)).body["user"]["role"] == "finance"

    r = await client.put(
        f"/api/v1/admin/staff/{created['id']}", json={"active": False}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["active"] is False
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": reviewer.refresh_token})
    assert refresh.status_code == 401
    assert (await api.password_login(reviewer.phone, STAFF_PASSWORD)).status_code == 401

    log = await audit_feed(client, action="staff.updated")
    assert len(log) == 2
    changes = [e["details"]["changes"] for e in log]
    assert {"active": [True, False]} in changes
    assert {"role": ["reviewer", "finance"], "name": ["王审核", "王财务"]} in changes
    created_log = await audit_feed(client, action="staff.created")
    assert created_log[0]["details"]["phone"] == f"{reviewer.phone[:3]}****{reviewer.phone[-4:]}"


async def test_a_staff_member_without_password_sets_it_with_the_reset(
    client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    phone = random_phone()
    r = await client.post(
        "/api/v1/admin/staff",
        json={"phone": phone, "name": "李财务", "role": "finance"},
        headers=admin.headers,
    )
    assert r.status_code == 201 and r.json()["has_password"] is False
    code = await api.sms_code(phone, "reset_password")
    r = await client.post(
        "/api/v1/auth/password/reset", json={"phone": phone, "sms_code": code, "new_password": STAFF_PASSWORD}
    )
    assert r.status_code == 204
    assert (await api.login(phone, STAFF_PASSWORD)).body["user"]["role"] == "finance"


@pytest.mark.parametrize("flag", LOOSE_FLAGS)
async def test_the_active_flag_is_a_json_boolean_or_a_422_that_changes_nothing(
    client: httpx.AsyncClient, api: ApiDriver, admin: Session, flag: Any
) -> None:
    _staff, made = await new_staff(client, api, admin, "finance")
    r = await client.put(f"/api/v1/admin/staff/{made['id']}", json={"active": flag}, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": "active", "message": "应为布尔值"}
    assert r.json()["detail"].startswith("启用状态：")
    staff = (await client.get("/api/v1/admin/staff", headers=admin.headers)).json()["items"]
    assert next(s for s in staff if s["id"] == made["id"])["active"] is True


async def test_staff_account_refusals(client: httpx.AsyncClient, api: ApiDriver, admin: Session) -> None:
    owner = await api.register()
    before = (await client.get("/api/v1/admin/staff", headers=admin.headers)).json()["total"]
    cases = [
        ({"phone": owner.phone, "name": "张三", "role": "reviewer"}, 409, "phone_taken"),
        ({"phone": ADMIN_PHONE, "name": "张三", "role": "reviewer"}, 409, "phone_taken"),
        (
            {"phone": random_phone(), "name": "张三", "role": "reviewer", "password": "short"},
            422,
            "weak_password",
        ),
        ({"phone": random_phone(), "name": "张三", "role": "owner"}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = await client.post("/api/v1/admin/staff", json=body, headers=admin.headers)
        assert r.status_code == status and r.json()["code"] == code, (body, r.text)
    weak = await client.post(
        "/api/v1/admin/staff",
        json={"phone": random_phone(), "name": "张三", "role": "reviewer", "password": "12345678"},
        headers=admin.headers,
    )
    assert weak.json()["errors"][0]["field"] == "password"
    assert (await client.get("/api/v1/admin/staff", headers=admin.headers)).json()["total"] == before

    admin_id = (await client.get("/api/v1/me", headers=admin.headers)).json()["user"]["id"]
    for body in ({"role": "reviewer"}, {"active": False}):
        r = await client.put(f"/api/v1/admin/staff/{admin_id}", json=body, headers=admin.headers)
        assert r.status_code == 409 and r.json()["code"] == "cannot_change_self"
    r = await client.put(f"/api/v1/admin/staff/{admin_id}", json={"name": "总管理员"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["role"] == "administrator"
    owner_id = (await client.get("/api/v1/me", headers=owner.headers)).json()["user"]["id"]
    r = await client.put(f"/api/v1/admin/staff/{owner_id}", json={"role": "reviewer"}, headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "staff_not_found"
    assert (await client.get("/api/v1/me", headers=owner.headers)).json()["user"]["role"] == "owner"


# --- audit log ---------------------------------------------------------------------------------


async def test_the_audit_log_is_filtered_and_served_to_the_gateway(
    client: httpx.AsyncClient, api: ApiDriver, admin: Session
) -> None:
    _reviewer, created = await new_staff(client, api, admin, "reviewer")
    await new_staff(client, api, admin, "finance")
    admin_id = (await client.get("/api/v1/me", headers=admin.headers)).json()["user"]["id"]

    by_admin = await audit_feed(client, actor=admin_id)
    assert len(by_admin) == 2 and {e["action"] for e in by_admin} == {"staff.created"}
    assert await audit_feed(client, actor=created["id"]) == []
    assert await audit_feed(client, since="2999-01-01T00:00:00+08:00") == []
    # Staff read the composed log at the gateway; identity serves no public one of its own.
    owner = await api.register()
    assert (await client.get("/api/v1/admin/audit-log", headers=admin.headers)).status_code == 404
    assert (await client.get("/internal/audit-log", headers=owner.headers)).status_code in (401, 403)

    assert (await client.get("/internal/audit-log")).status_code == 401
    feed = await client.get("/internal/audit-log", params={"limit": 1}, headers=service_headers())
    assert feed.status_code == 200, feed.text
    items = feed.json()["items"]
    assert len(items) == 1
    assert {
        "service",
        "at",
        "actor_id",
        "actor_role",
        "action",
        "target_type",
        "target_id",
        "reason",
        "details",
    } <= set(items[0])
    assert items[0]["service"] == "identity" and items[0]["actor_id"] == admin_id
    # the contract the gateway composes the staff's log with: every field, none lost or added
    assert AuditFeed.model_validate(feed.json()).model_dump(mode="json") == feed.json()
    since = (
        await client.get(
            "/internal/audit-log", params={"since": "2000-01-01T00:00:00Z"}, headers=service_headers()
        )
    ).json()
    assert len(since["items"]) == 2
