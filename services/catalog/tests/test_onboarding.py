"""申请入驻平台: a certified organisation applies, a reviewer approves or rejects."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from common.testing.saga import known_org

if TYPE_CHECKING:
    from conftest import Catalog

pytestmark = pytest.mark.broker


async def test_an_approved_application_makes_a_provider_and_tells_identity(catalog: Catalog) -> None:
    caller = catalog.enterprise()
    await catalog.certify(caller.org_id or "", "广西认证科技有限公司")
    r = await catalog.apply(caller)
    assert r.status_code == 201, r.text
    application = r.json()
    assert application["state"] == "pending_review" and application["state_label"] == "待审核"
    assert application["org_name"] == "广西认证科技有限公司"  # the certified name wins

    queue = (
        await catalog.client.get(
            "/api/v1/admin/provider-applications?status=pending_review", headers=catalog.reviewer.headers
        )
    ).json()
    assert [a["id"] for a in queue["items"]] == [application["id"]]
    assert queue["counts"]["pending_review"] == 1

    r = await catalog.client.post(
        f"/api/v1/admin/provider-applications/{application['id']}/approve",
        json={},
        headers=catalog.reviewer.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "approved"
    assert await catalog.events("catalog.provider_approved") == [
        {"org_id": caller.org_id, "name": "广西认证科技有限公司"}
    ]
    me = (await catalog.client.get("/api/v1/me/provider-application", headers=caller.headers)).json()
    assert me["state"] == "approved" and me["state_label"] == "审核通过"
    profile = (await catalog.client.get("/api/v1/me/provider-profile", headers=caller.headers)).json()
    assert profile["contact_phone"] == "13812346433"
    audit = await catalog.sql("SELECT action, target_id FROM audit_log")
    assert [tuple(a) for a in audit] == [("provider_application.approve", application["id"])]


async def test_a_rejected_application_keeps_its_reason_and_may_be_made_again(catalog: Catalog) -> None:
    caller = catalog.enterprise()
    first = (await catalog.apply(caller)).json()
    r = await catalog.client.post(
        f"/api/v1/admin/provider-applications/{first['id']}/reject", json={}, headers=catalog.reviewer.headers
    )
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = await catalog.client.post(
        f"/api/v1/admin/provider-applications/{first['id']}/reject",
        json={"reason": "资质证明不清晰"},
        headers=catalog.reviewer.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    me = (await catalog.client.get("/api/v1/me/provider-application", headers=caller.headers)).json()
    assert me["reject_reason"] == "资质证明不清晰"
    again = await catalog.apply(caller)
    assert again.status_code == 201
    assert await catalog.events("catalog.provider_approved") == []
    [rejected] = await catalog.events("catalog.provider_application_rejected")  # the applicant is told why
    assert (rejected["application_id"], rejected["org_id"], rejected["reason"]) == (
        first["id"],
        caller.org_id,
        "资质证明不清晰",
    )
    r = await catalog.client.post(
        f"/api/v1/admin/provider-applications/{first['id']}/approve",
        json={},
        headers=catalog.reviewer.headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "application_not_pending"


async def test_a_second_application_while_one_is_pending_or_approved_is_refused(catalog: Catalog) -> None:
    caller = catalog.enterprise()
    assert (await catalog.apply(caller)).status_code == 201
    r = await catalog.apply(caller)
    assert r.status_code == 409 and r.json()["code"] == "application_pending"
    provider = await catalog.provider()
    r = await catalog.apply(provider)
    assert r.status_code == 409 and r.json()["code"] == "already_provider"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"categories": ["数字化转型", "美容美发"]}, 422, "unknown_category"),
        ({"categories": []}, 422, "validation_error"),
        ({"contact_phone": "12345"}, 422, "validation_error"),
        ({"proof_file_ids": ["no-such-file"]}, 422, "file_unknown"),
        ({"proof_file_ids": []}, 422, "validation_error"),
    ],
)
async def test_bad_applications_are_refused_and_change_nothing(
    catalog: Catalog, change: dict[str, object], status: int, code: str
) -> None:
    caller = catalog.enterprise()
    r = await catalog.apply(caller, **change)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert await catalog.sql("SELECT id FROM provider_applications") == []


async def test_a_proof_file_of_another_organisation_is_refused(catalog: Catalog) -> None:
    caller = catalog.enterprise()
    someone_elses = catalog.file_of("another-org")
    r = await catalog.apply(caller, proof_file_ids=[someone_elses])
    assert r.status_code == 422 and r.json()["code"] == "file_not_owned"
    assert await catalog.sql("SELECT id FROM provider_applications") == []


async def test_an_organisation_applying_before_its_certification_reaches_catalog_is_named_as_certified(
    catalog: Catalog,
) -> None:
    """Certify, then apply at once: catalog has no copy yet; it asks identity for the
    certified name instead of taking whatever the form says."""
    caller = catalog.enterprise()
    org = known_org(catalog.h.peers["identity"], caller.org_id or "")
    assert org is not None
    org.name, org.uscc = "广西认证科技有限公司", "91450100MA5L0TEST"
    r = await catalog.apply(caller, name="表单里随手填的名称")
    assert r.status_code == 201, r.text
    assert r.json()["org_name"] == "广西认证科技有限公司"


async def test_a_suspension_identity_knows_stops_an_application_before_catalog_heard_of_it(
    catalog: Catalog,
) -> None:
    caller = catalog.enterprise()
    org = known_org(catalog.h.peers["identity"], caller.org_id or "")
    assert org is not None
    org.suspended, org.suspended_reason = True, "违规"
    r = await catalog.apply(caller)
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert await catalog.sql("SELECT id FROM provider_applications") == []


async def test_only_certified_unsuspended_organisations_apply(catalog: Catalog) -> None:
    uncertified = catalog.h.issuer.member(caps=())
    r = await catalog.apply(uncertified)
    assert r.status_code == 403 and r.json()["code"] == "enterprise_required"
    caller = catalog.enterprise()
    await catalog.suspend(caller.org_id or "")
    r = await catalog.apply(caller)
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert await catalog.sql("SELECT id FROM provider_applications") == []


@pytest.mark.parametrize("role", ["finance", "owner"])
async def test_only_reviewers_decide_applications(catalog: Catalog, role: str) -> None:
    application = (await catalog.apply(catalog.enterprise())).json()
    who = catalog.h.issuer.staff(role) if role != "owner" else catalog.enterprise()
    r = await catalog.client.post(
        f"/api/v1/admin/provider-applications/{application['id']}/approve", json={}, headers=who.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    r = await catalog.client.get("/api/v1/admin/provider-applications", headers=who.headers)
    assert r.status_code == 403
    assert (await catalog.sql("SELECT state FROM provider_applications"))[0][0] == "pending_review"


async def test_the_provider_edits_its_profile(catalog: Catalog) -> None:
    provider = await catalog.provider()
    body = {
        "profile": "新的简介",
        "categories": ["技术创新"],
        "contact_name": "王五",
        "contact_phone": "0771-5551234",
        "address": "南宁市西乡塘区",
        "working_hours": "周一至周六 09:00:00-17:00:00",
    }
    r = await catalog.client.put("/api/v1/me/provider-profile", json=body, headers=provider.headers)
    assert r.status_code == 200 and r.json()["working_hours"] == body["working_hours"]
    stranger = catalog.enterprise()
    r = await catalog.client.put("/api/v1/me/provider-profile", json=body, headers=stranger.headers)
    assert r.status_code == 403 and r.json()["code"] == "provider_not_approved"


async def test_an_organisation_without_a_receiving_account_is_not_approved_until_it_has_one(
    catalog: Catalog,
) -> None:
    caller = catalog.enterprise()
    await catalog.certify(caller.org_id or "", "广西无账户科技有限公司")
    application = (await catalog.apply(caller)).json()
    identity = known_org(catalog.h.peers["identity"], caller.org_id or "")
    assert identity is not None
    identity.bank_account = False  # 支付认证 not done: the enterprise would pay into nothing
    url = f"/api/v1/admin/provider-applications/{application['id']}/approve"
    r = await catalog.client.post(url, json={}, headers=catalog.reviewer.headers)
    assert r.status_code == 409 and r.json()["code"] == "provider_bank_account_missing", r.text
    assert "收款账户" in r.json()["detail"]
    me = (await catalog.client.get("/api/v1/me/provider-application", headers=caller.headers)).json()
    assert me["state"] == "pending_review"
    assert await catalog.events("catalog.provider_approved") == []
    identity.bank_account = True
    r = await catalog.client.post(url, json={}, headers=catalog.reviewer.headers)
    assert r.status_code == 200 and r.json()["state"] == "approved"


async def test_an_approval_waiting_on_identity_leaves_the_application_to_another_reviewer(
    catalog: Catalog,
) -> None:
    """审核通过 asks identity whether the applicant has a receiving account. Were the
    application locked meanwhile (in an open transaction, on one of catalog's connections),
    a slow identity would hold every other decision on it, and the connection. Asked first,
    the approval decides on the application as it is under its lock: rejected meanwhile by
    another reviewer, it is refused with the 409 a late decision gets."""
    caller = catalog.enterprise()
    application = (await catalog.apply(caller)).json()
    other = catalog.h.issuer.staff("reviewer")
    catalog.identity.gate = asyncio.Event()
    approving = asyncio.ensure_future(
        catalog.client.post(
            f"/api/v1/admin/provider-applications/{application['id']}/approve",
            json={},
            headers=catalog.reviewer.headers,
        )
    )
    try:
        async with asyncio.timeout(10):
            await catalog.identity.arrived.get()  # the approval is asking identity
            rejected = await catalog.client.post(
                f"/api/v1/admin/provider-applications/{application['id']}/reject",
                json={"reason": "资质证明不清晰"},
                headers=other.headers,
            )
    except TimeoutError:
        pytest.fail("the rejection waited 10 s: the application was locked while identity was asked")
    finally:
        catalog.identity.gate.set()
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected", rejected.text
    refused = await approving
    assert refused.status_code == 409 and refused.json()["code"] == "application_not_pending", refused.text
    me = (await catalog.client.get("/api/v1/me/provider-application", headers=caller.headers)).json()
    assert me["state"] == "rejected" and me["reject_reason"] == "资质证明不清晰"
    assert await catalog.events("catalog.provider_approved") == []
    audit = await catalog.sql("SELECT action FROM audit_log")
    assert [a[0] for a in audit] == ["provider_application.reject"]
