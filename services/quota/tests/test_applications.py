"""服务券配额申请 through quota's API on real PostgreSQL and RabbitMQ: general and special
applications, review, the voucher they issue, and every refusal a 4xx that changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from common.categories import VOUCHER_TYPES
from common.events import OrganizationCertified, OrganizationSuspended
from common.numbers import format_date_cn, shanghai_now
from common.orgs import OrgCopy
from common.reads import PortalStats
from common.testing.data import LOOSE_AMOUNTS
from common.testing.saga import FakeFile
from quota.domain.campaigns import campaign_spec
from quota.models import QuotaApplication, Voucher
from quota.service.campaigns import put_campaign
from quota.testing import API, Quota, journal_adds_up, make_uscc

pytestmark = pytest.mark.parametrize("transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker)])


async def count(q: Quota, table: str) -> int:
    return int(await q.scalar(f"SELECT count(*) FROM {table}"))


async def entry(q: Quota, caller, voucher_type: str = "general") -> dict:
    r = await q.client.get(f"{API}/me/vouchers", headers=caller.headers)
    assert r.status_code == 200, r.text
    return next(i for i in r.json()["items"] if i["voucher_type"] == voucher_type)


async def test_an_enterprise_applies_for_the_general_voucher_and_after_approval_it_shows_go_use_with_its_number(
    quota: Quota,
) -> None:
    uscc = make_uscc()
    ent = await quota.certified(uscc=uscc)
    await quota.designate(uscc, "创新型中小企业")
    reviewer = quota.h.issuer.staff("reviewer")

    first = await entry(quota, ent)
    assert (first["state"], first["state_label"]) == ("not_applied", "申请")
    assert first["policy_text"].startswith("通用券补贴额度：一般规模以上制造业企业年度配额为每家5万元")

    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["state"] == "pending_review" and app["flagged"] is False and app["tier_fen"] == 10_000_000
    pending = await entry(quota, ent)
    assert (pending["state"], pending["state_label"]) == ("pending_review", "待审核")

    queue = await quota.client.get(
        f"{API}/admin/quota-applications?status=pending_review", headers=reviewer.headers
    )
    assert queue.status_code == 200 and [i["id"] for i in queue.json()["items"]] == [app["id"]]
    assert queue.json()["counts"]["pending_review"] == 1

    r = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/approve", json={}, headers=reviewer.headers
    )
    assert r.status_code == 200, r.text
    shown = await entry(quota, ent)
    assert (shown["state"], shown["state_label"]) == ("active", "去使用")
    assert re.fullmatch(r"SVC\d{12}\d{3}", shown["voucher_no"])
    assert (shown["total_fen"], shown["used_fen"], shown["remaining_fen"]) == (10_000_000, 0, 10_000_000)
    assert shown["tier"] == "创新型中小企业"
    assert shown["valid_label"] == f"{quota.year}年01月01日~{quota.year}年12月31日"

    moves = await quota.client.get(f"{API}/me/vouchers/{shown['voucher_id']}/movements", headers=ent.headers)
    assert [(m["kind"], m["amount_fen"], m["remaining_fen"]) for m in moves.json()["items"]] == [
        ("issue", 10_000_000, 10_000_000)
    ]
    assert (moves.json()["total"], moves.json()["page"], moves.json()["page_size"]) == (1, 1, 20)
    audit = await quota.scalar("SELECT count(*) FROM audit_log WHERE action = 'quota_application.approve'")
    assert audit == 1
    [approved] = await quota.published("quota.application_approved")  # the enterprise is told
    assert approved["aggregate_id"] == app["id"]
    told = approved["payload"]
    assert (told["enterprise_id"], told["voucher_type"], told["approved_fen"]) == (
        ent.org_id,
        "general",
        10_000_000,
    )
    assert (told["voucher_id"], told["voucher_no"]) == (shown["voucher_id"], shown["voucher_no"])


async def test_a_second_general_application_in_one_campaign_is_refused(quota: Quota) -> None:
    ent = await quota.certified()
    ok = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert ok.status_code == 201
    again = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert again.status_code == 409 and again.json()["code"] == "already_applied"
    assert await count(quota, "quota_applications") == 1


async def test_an_enterprise_on_no_list_is_flagged_and_approved_at_the_base_tier_only_with_a_reason(
    quota: Quota,
) -> None:
    ent = await quota.certified()
    reviewer = quota.h.issuer.staff("reviewer")
    app = (
        await quota.client.post(
            f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
        )
    ).json()
    assert app["flagged"] is True and app["tier_fen"] is None
    flagged = await quota.client.get(f"{API}/admin/quota-applications?flagged=true", headers=reviewer.headers)
    assert [i["id"] for i in flagged.json()["items"]] == [app["id"]]

    bare = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/approve", json={}, headers=reviewer.headers
    )
    assert bare.status_code == 422 and bare.json()["code"] == "reason_required"
    assert await count(quota, "vouchers") == 0

    ok = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/approve",
        json={"reason": "经核实为规上企业"},
        headers=reviewer.headers,
    )
    assert ok.status_code == 200 and ok.json()["approved_fen"] == 5_000_000
    shown = await entry(quota, ent)
    assert shown["total_fen"] == 5_000_000 and shown["tier"] == "一般规模以上制造业企业"


async def test_a_rejected_application_shows_its_reason_and_may_be_made_again(quota: Quota) -> None:
    ent = await quota.certified()
    reviewer = quota.h.issuer.staff("reviewer")
    app = (
        await quota.client.post(
            f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
        )
    ).json()
    blank = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/reject", json={"reason": " "}, headers=reviewer.headers
    )
    assert blank.status_code == 422
    r = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/reject",
        json={"reason": "非制造业企业"},
        headers=reviewer.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    shown = await entry(quota, ent)
    assert shown["state"] == "rejected" and shown["reject_reason"] == "非制造业企业"
    [rejected] = await quota.published("quota.application_rejected")  # the enterprise is told why
    assert rejected["payload"] == {
        "application_id": app["id"],
        "enterprise_id": ent.org_id,
        "voucher_type": "general",
        "reason": "非制造业企业",
    }
    twice = await quota.client.post(
        f"{API}/admin/quota-applications/{app['id']}/approve", json={"reason": "x"}, headers=reviewer.headers
    )
    assert twice.status_code == 409 and twice.json()["code"] == "application_already_decided"
    again = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert again.status_code == 201


async def test_a_special_voucher_is_requested_with_its_basis_and_proof_and_approved_within_the_request(
    quota: Quota,
) -> None:
    ent = await quota.certified()
    reviewer = quota.h.issuer.staff("reviewer")
    quota.files["proof-1"] = FakeFile("proof-1", str(ent.org_id))
    body = {
        "voucher_type": "financing_guarantee",
        "requested_fen": 40_000_000,  # 40万
        "basis_fen": 100_000_000,  # the guarantee fee: 100万 -> at most 50万
        "proof_file_ids": ["proof-1"],
    }
    app = await quota.client.post(f"{API}/me/quota-applications", json=body, headers=ent.headers)
    assert app.status_code == 201, app.text
    app_id = app.json()["id"]
    over = await quota.client.post(
        f"{API}/admin/quota-applications/{app_id}/approve",
        json={"approved_fen": 40_000_001},
        headers=reviewer.headers,
    )
    assert over.status_code == 422 and over.json()["code"] == "approved_over_request"
    none = await quota.client.post(
        f"{API}/admin/quota-applications/{app_id}/approve", json={}, headers=reviewer.headers
    )
    assert none.status_code == 422 and none.json()["code"] == "approved_fen_required"
    ok = await quota.client.post(
        f"{API}/admin/quota-applications/{app_id}/approve",
        json={"approved_fen": 30_000_000},
        headers=reviewer.headers,
    )
    assert ok.status_code == 200
    shown = await entry(quota, ent, "financing_guarantee")
    assert shown["state"] == "active" and shown["total_fen"] == 30_000_000

    # A second request the same year: within the cap left (100万 - 30万), it tops up the same voucher.
    second = await quota.client.post(
        f"{API}/me/quota-applications",
        json={**body, "requested_fen": 70_000_001, "basis_fen": 200_000_000},
        headers=ent.headers,
    )
    assert second.status_code == 422 and second.json()["code"] == "over_yearly_cap"
    second = await quota.client.post(
        f"{API}/me/quota-applications",
        json={**body, "requested_fen": 50_000_000, "basis_fen": 200_000_000},
        headers=ent.headers,
    )
    assert second.status_code == 201
    await quota.client.post(
        f"{API}/admin/quota-applications/{second.json()['id']}/approve",
        json={"approved_fen": 50_000_000},
        headers=reviewer.headers,
    )
    shown = await entry(quota, ent, "financing_guarantee")
    assert shown["total_fen"] == 80_000_000 and await count(quota, "vouchers") == 1


async def test_no_approval_after_the_window_so_no_remainder_outlives_it(quota: Quota) -> None:
    reviewer = quota.h.issuer.staff("reviewer")
    today = shanghai_now().date()
    closed = today - timedelta(days=3)  # the window ended days ago (its grace too): expired
    ent = await quota.certified()
    quota.files["proof-late"] = FakeFile("proof-late", str(ent.org_id))
    old = await quota.voucher(
        str(ent.org_id),
        10_000_000,
        "financing_guarantee",
        valid_from=closed - timedelta(days=30),
        valid_to=closed,
    )

    async def expired() -> bool:
        v = await quota.row(Voucher, old.id)
        return v.expired_at is not None and v.remaining_fen == 0

    await quota.h.eventually(expired, within=10, what="the closed voucher expired by its timer")
    body = {
        "voucher_type": "financing_guarantee",
        "requested_fen": 20_000_000,
        "basis_fen": 100_000_000,
        "proof_file_ids": ["proof-late"],
    }
    app = await quota.client.post(f"{API}/me/quota-applications", json=body, headers=ent.headers)
    assert app.status_code == 201, app.text
    # A top-up would land on the expired voucher: a remainder no timer would ever expire.
    r = await quota.client.post(
        f"{API}/admin/quota-applications/{app.json()['id']}/approve",
        json={"approved_fen": 20_000_000},
        headers=reviewer.headers,
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "voucher_window_closed"
    assert format_date_cn(closed) in r.json()["detail"]
    v = await journal_adds_up(quota, old.id)
    assert (v.total_fen, v.remaining_fen, v.expired_fen) == (10_000_000, 0, 10_000_000)
    assert (await quota.row(QuotaApplication, app.json()["id"])).state == "pending_review"

    # The campaign's window for the type has closed: a first approval is refused the same way.
    windows = {t: (closed - timedelta(days=30), closed) for t in VOUCHER_TYPES}
    async with quota.db.transaction() as s:
        await put_campaign(s, quota.year, campaign_spec(quota.year, windows))
    other = await quota.certified()
    quota.files["proof-other"] = FakeFile("proof-other", str(other.org_id))
    app = await quota.client.post(
        f"{API}/me/quota-applications",
        json={**body, "proof_file_ids": ["proof-other"]},
        headers=other.headers,
    )
    assert app.status_code == 201, app.text
    r = await quota.client.post(
        f"{API}/admin/quota-applications/{app.json()['id']}/approve",
        json={"approved_fen": 20_000_000},
        headers=reviewer.headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "voucher_window_closed", r.text
    assert await count(quota, "vouchers") == 1  # the first enterprise's only
    # Staff reject it with a reason instead; the enterprise sees why.
    r = await quota.client.post(
        f"{API}/admin/quota-applications/{app.json()['id']}/reject",
        json={"reason": "配额有效期已结束"},
        headers=reviewer.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "rejected"


BAD_SPECIAL_REQUESTS = [
    ({"requested_fen": 50_000_001}, 422, "basis_insufficient"),  # over 50% of the guarantee fee
    ({"requested_fen": 100_000_001, "basis_fen": 400_000_000}, 422, "over_yearly_cap"),
    ({"requested_fen": 0}, 422, "validation_error"),
    ({"requested_fen": -5}, 422, "validation_error"),
    ({"basis_fen": None}, 422, "special_fields_required"),
    ({"proof_file_ids": []}, 422, "special_fields_required"),
    ({"proof_file_ids": ["someone-elses"]}, 422, "file_not_owned"),
    ({"proof_file_ids": ["missing"]}, 422, "file_unknown"),
    ({"proof_file_ids": ["a-zip"]}, 422, "file_type_not_allowed"),
    ({"voucher_type": "travel"}, 422, "validation_error"),
]


async def test_each_bad_special_request_is_refused_with_its_code_and_nothing_changes(quota: Quota) -> None:
    ent = await quota.certified()
    quota.files["mine"] = FakeFile("mine", str(ent.org_id))
    quota.files["someone-elses"] = FakeFile("someone-elses", "another-org")
    quota.files["a-zip"] = FakeFile("a-zip", str(ent.org_id), name="合同.zip", content_type="application/zip")
    good = {
        "voucher_type": "financing_guarantee",
        "requested_fen": 10_000_000,
        "basis_fen": 100_000_000,
        "proof_file_ids": ["mine"],
    }
    for changes, status, code in BAD_SPECIAL_REQUESTS:
        r = await quota.client.post(
            f"{API}/me/quota-applications", json={**good, **changes}, headers=ent.headers
        )
        assert (r.status_code, r.json()["code"]) == (status, code), (changes, r.text)
        assert r.json()["detail"]
    assert await count(quota, "quota_applications") == 0


async def test_the_lease_voucher_allows_at_most_20_percent_of_the_interest(quota: Quota) -> None:
    ent = await quota.certified()
    quota.files["lease"] = FakeFile("lease", str(ent.org_id))
    body = {
        "voucher_type": "equipment_leasing",
        "requested_fen": 2_000_001,
        "basis_fen": 10_000_000,
        "proof_file_ids": ["lease"],
    }
    r = await quota.client.post(f"{API}/me/quota-applications", json=body, headers=ent.headers)
    assert r.status_code == 422 and r.json()["code"] == "basis_insufficient"
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={**body, "requested_fen": 2_000_000}, headers=ent.headers
    )
    assert r.status_code == 201


async def test_only_a_certified_unsuspended_enterprise_applies(quota: Quota) -> None:
    provider_only = quota.h.issuer.member(caps=("provider",))
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=provider_only.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "enterprise_required"
    staff = quota.h.issuer.staff("reviewer")
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=staff.headers
    )
    assert r.status_code == 403
    anonymous = await quota.client.post(f"{API}/me/quota-applications", json={"voucher_type": "general"})
    assert anonymous.status_code == 401

    ent = await quota.certified()
    await quota.h.publish(
        OrganizationSuspended(org_id=str(ent.org_id), reason="违规"), aggregate_id=str(ent.org_id)
    )
    await quota.h.settle()
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert await count(quota, "quota_applications") == 0


async def test_an_enterprise_applying_before_its_certification_reaches_quota_gets_its_designated_tier(
    quota: Quota,
) -> None:
    """Certify, then apply at once: quota has no copy yet (the event is in flight). It asks
    identity instead of recording an empty name, no USCC and a flagged 5万 application."""
    uscc = make_uscc()
    await quota.designate(uscc, "国家级制造业单项冠军")
    ent = quota.certified_at_identity(uscc=uscc, name="广西单项冠军制造有限公司")
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 201, r.text
    app = r.json()
    assert (app["flagged"], app["tier"], app["tier_fen"]) == (False, "国家级制造业单项冠军", 30_000_000)
    assert (app["enterprise_name"], app["uscc"]) == ("广西单项冠军制造有限公司", uscc)

    # The held-back event arrives: the copy agrees and the application stays as it is.
    await quota.h.publish(
        OrganizationCertified(
            org_id=str(ent.org_id), name="广西单项冠军制造有限公司", uscc=uscc, kind="enterprise"
        ),
        aggregate_id=str(ent.org_id),
    )
    await quota.h.settle()
    copy = await quota.row(OrgCopy, ent.org_id)
    assert (copy.certified, copy.uscc, copy.name) == (True, uscc, "广西单项冠军制造有限公司")
    mine = await quota.client.get(f"{API}/me/quota-applications", headers=ent.headers)
    assert [(a["tier_fen"], a["flagged"]) for a in mine.json()["items"]] == [(30_000_000, False)]
    assert (mine.json()["total"], mine.json()["page"], mine.json()["page_size"]) == (1, 1, 20)


async def test_a_copy_older_than_the_token_is_refreshed_from_identity_before_the_tier_is_decided(
    quota: Quota,
) -> None:
    """quota's copy exists but predates the certification (certified false): the token is
    newer, so quota reads identity at request time."""
    uscc = make_uscc()
    await quota.designate(uscc, "专精特新“小巨人”企业")
    ent = quota.certified_at_identity(uscc=uscc)
    async with quota.db.transaction() as s:
        s.add(OrgCopy(org_id=str(ent.org_id)))
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 201, r.text
    assert (r.json()["tier_fen"], r.json()["uscc"]) == (30_000_000, uscc)
    copy = await quota.row(OrgCopy, ent.org_id)
    assert (copy.certified, copy.uscc) == (True, uscc)


async def test_identity_unreachable_while_the_copy_is_missing_is_a_retryable_409_that_saves_nothing(
    quota: Quota,
) -> None:
    uscc = make_uscc()
    await quota.designate(uscc, "国家级制造业单项冠军")
    ent = quota.certified_at_identity(uscc=uscc)
    quota.h.peers["identity"].state.down = True
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["detail"]) == ("organization_syncing", "认证信息同步中，请稍后再试")
    assert r.headers.get("retry-after")
    assert await count(quota, "quota_applications") == 0
    assert await count(quota, "org_copies") == 0

    quota.h.peers["identity"].state.down = False  # identity answers again: the retry succeeds
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 201 and r.json()["tier_fen"] == 30_000_000


async def test_a_suspension_identity_knows_is_refused_even_before_any_copy_arrived(quota: Quota) -> None:
    ent = quota.certified_at_identity(suspended=True)
    r = await quota.client.post(
        f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert await count(quota, "quota_applications") == 0


async def test_only_reviewers_review_and_only_administrators_raise_a_providers_cap(quota: Quota) -> None:
    ent = await quota.certified()
    app = (
        await quota.client.post(
            f"{API}/me/quota-applications", json={"voucher_type": "general"}, headers=ent.headers
        )
    ).json()
    finance = quota.h.issuer.staff("finance")
    for who in (ent, finance):
        r = await quota.client.post(
            f"{API}/admin/quota-applications/{app['id']}/approve", json={"reason": "x"}, headers=who.headers
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
        r = await quota.client.get(f"{API}/admin/quota-applications", headers=who.headers)
        assert r.status_code == 403
    unknown = await quota.client.post(
        f"{API}/admin/quota-applications/nope/approve",
        json={},
        headers=quota.h.issuer.staff("reviewer").headers,
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "application_not_found"
    reviewer = quota.h.issuer.staff("reviewer")
    r = await quota.client.put(
        f"{API}/admin/providers/p1/subsidy-cap", json={"cap_fen": 1, "reason": "x"}, headers=reviewer.headers
    )
    assert r.status_code == 403
    admin = quota.h.issuer.staff("administrator")
    r = await quota.client.put(
        f"{API}/admin/providers/p1/subsidy-cap",
        json={"cap_fen": 800_000_000, "reason": "重点服务机构"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.json()["cap_fen"] == 800_000_000
    assert (
        await quota.scalar("SELECT reason FROM audit_log WHERE action = 'provider_cap.set'") == "重点服务机构"
    )
    no_reason = await quota.client.put(
        f"{API}/admin/providers/p1/subsidy-cap", json={"cap_fen": 1}, headers=admin.headers
    )
    assert no_reason.status_code == 422
    assert await count(quota, "vouchers") == 0 and await count(quota, "audit_log") == 1


@pytest.mark.parametrize("field", ["requested_fen", "basis_fen", "approved_fen", "cap_fen"])
@pytest.mark.parametrize("amount", LOOSE_AMOUNTS)
async def test_amounts_in_applications_approvals_and_caps_are_json_integers_or_a_422_that_changes_nothing(
    quota: Quota, field: str, amount: object
) -> None:
    ent = await quota.certified()
    quota.files["proof-1"] = FakeFile("proof-1", str(ent.org_id))
    special = {
        "voucher_type": "financing_guarantee",
        "requested_fen": 40_000_000,
        "basis_fen": 100_000_000,
        "proof_file_ids": ["proof-1"],
    }
    if field in ("requested_fen", "basis_fen"):
        r = await quota.client.post(
            f"{API}/me/quota-applications", json={**special, field: amount}, headers=ent.headers
        )
    elif field == "approved_fen":
        app = await quota.client.post(f"{API}/me/quota-applications", json=special, headers=ent.headers)
        assert app.status_code == 201, app.text
        r = await quota.client.post(
            f"{API}/admin/quota-applications/{app.json()['id']}/approve",
            json={"approved_fen": amount},
            headers=quota.h.issuer.staff("reviewer").headers,
        )
    else:
        r = await quota.client.put(
            f"{API}/admin/providers/p1/subsidy-cap",
            json={"cap_fen": amount, "reason": "重点服务机构"},
            headers=quota.h.issuer.staff("administrator").headers,
        )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": field, "message": "应为整数"}
    assert await count(quota, "vouchers") == 0 and await count(quota, "audit_log") == 0
    assert await quota.scalar("SELECT count(*) FROM quota_applications WHERE state <> 'pending_review'") == 0
    assert await quota.scalar("SELECT count(*) FROM provider_subsidy_caps") == 0


async def test_another_enterprises_voucher_is_not_found_and_the_quote_is_for_its_owner_only(
    quota: Quota,
) -> None:
    owner = await quota.certified()
    other = await quota.certified()
    voucher = await quota.voucher(str(owner.org_id), 5_000_000)
    quota.products["p-76"] = {
        "id": "p-76",
        "name": "企业诊断服务",
        "category": "企业诊断",
        "provider_id": "prov-1",
        "provider_name": "服务机构",
        "platform_price_fen": 7600,
        "market_price_fen": 8000,
        "max_subsidy_fen": 10_000,
        "status": "listed",
        "listed": True,
        "provider_suspended": False,
    }
    quota.products["p-lease"] = {**quota.products["p-76"], "id": "p-lease", "category": "直接设备租赁"}
    r = await quota.client.get(f"{API}/vouchers/{voucher.id}/quote?product_id=p-76", headers=owner.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["subsidy_fen"], r.json()["payable_fen"], r.json()["remaining_after_fen"]) == (
        3800,
        3800,
        4_996_200,
    )
    assert r.json()["payable_upper"] == "叁拾捌元整"  # 实付大写金额(人民币), as 订单详情 shows it
    for path in (f"/vouchers/{voucher.id}/quote?product_id=p-76", f"/me/vouchers/{voucher.id}/movements"):
        r = await quota.client.get(API + path, headers=other.headers)
        assert r.status_code == 404 and r.json()["code"] == "voucher_not_found"
    wrong = await quota.client.get(
        f"{API}/vouchers/{voucher.id}/quote?product_id=p-lease", headers=owner.headers
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "wrong_voucher_type"
    missing = await quota.client.get(
        f"{API}/vouchers/{voucher.id}/quote?product_id=nope", headers=owner.headers
    )
    assert missing.status_code == 404 and missing.json()["code"] == "product_not_found"
    zero = await quota.client.get(
        f"{API}/vouchers/{voucher.id}/quote?product_id=p-76&amount_fen=0", headers=owner.headers
    )
    assert zero.status_code == 422
    big = await quota.client.get(
        f"{API}/vouchers/{voucher.id}/quote?product_id=p-76&amount_fen=30000000", headers=owner.headers
    )
    assert big.json()["subsidy_fen"] == 10_000  # the product's max subsidy
    assert (await quota.row(Voucher, voucher.id)).remaining_fen == 5_000_000  # a quote reserves nothing


async def test_the_internal_quote_and_stats_read_the_current_vouchers(quota: Quota) -> None:
    from common.auth import issue_service_token

    ent = await quota.certified()
    await quota.voucher(str(ent.org_id), 5_000_000)
    settings = quota.h["quota"].runtime.settings
    headers = {"Authorization": f"Bearer {issue_service_token(settings.service_token_secret, 'orders')}"}
    q = {
        "enterprise_id": ent.org_id,
        "provider_id": "prov",
        "category": "数字化转型",
        "price_fen": 7600,
        "max_subsidy_fen": 5000,
    }
    r = await quota.client.get("/internal/quote", params=q, headers=headers)
    assert r.status_code == 200 and r.json()["subsidy_fen"] == 3800 and r.json()["ratio_bp"] == 5000
    r = await quota.client.get("/internal/quote", params={**q, "category": "融资担保"}, headers=headers)
    assert r.status_code == 404
    r = await quota.client.get("/internal/quote", params=q)
    assert r.status_code == 401
    stats = (await quota.client.get("/internal/stats", headers=headers)).json()
    assert stats == {
        "enterprises_with_quota": 1,
        "quota_total_fen": 5_000_000,
        "pending_budget_fen": 5_000_000_000,
        "deducted_fen": 0,
    }
    assert PortalStats.model_validate(stats).model_dump(mode="json") == stats  # the gateway's contract
    async with quota.db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM voucher_movements"))).scalar_one() == 1
