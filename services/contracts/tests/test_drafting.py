"""Drafting: order accepted -> draft; the provider sets the terms; the enterprise returns it;
the provider edits and submits again; the enterprise agrees and it cannot change any more."""

from __future__ import annotations

from typing import Any

import pytest

from common.testing.data import LOOSE_AMOUNTS

API = "/api/v1"


async def test_an_accepted_order_gets_a_draft_with_the_orders_snapshot(deal: Any) -> None:
    draft = await deal.drafted()
    assert draft["state"] == "drafting" and draft["version"] == 0
    assert (
        draft["enterprise_name"] == "广西测试制造有限公司" and draft["provider_name"] == "南宁数字化服务中心"
    )
    assert draft["reserved_fen"] == 9_000_000 and draft["ratio_bp"] == 5000
    assert draft["signatures"] == {"enterprise": None, "provider": None}
    assert (await deal.contract(deal.provider)).json()["actions"] == ["edit"]


async def test_the_whole_drafting_flow_with_a_return_and_an_edit_keeps_every_version(deal: Any) -> None:
    await deal.drafted()
    r = await deal.put(total_fen=30_000_000, deposit_fen=6_000_000, terms="第一版条款")
    assert r.status_code == 200, r.text
    c = r.json()
    # the subsidy is fixed here: min(reserved 90,000, 50% × 300,000, product max 90,000)
    assert (c["total_fen"], c["subsidy_fen"], c["payable_fen"], c["deposit_fen"], c["balance_fen"]) == (
        30_000_000,
        9_000_000,
        21_000_000,
        6_000_000,
        15_000_000,
    )
    assert c["payable_upper"] == "贰拾壹万元整"
    assert (await deal.act("submit", deal.provider)).json()["state"] == "pending_review"
    assert (await deal.contract()).json()["actions"] == ["agree", "return"]

    r = await deal.act("return", deal.enterprise, {"reason": "定金比例过高，请调整"})
    assert r.status_code == 200 and r.json()["state"] == "returned"
    assert r.json()["return_reason"] == "定金比例过高，请调整"

    r = await deal.put(total_fen=10_000_000, deposit_fen=1_000_000, terms="第二版条款")
    assert r.json()["subsidy_fen"] == 5_000_000  # 50% of the smaller total
    assert r.json()["payable_fen"] == 5_000_000 and r.json()["balance_fen"] == 4_000_000
    assert (await deal.act("submit", deal.provider)).json()["version"] == 2
    r = await deal.act("agree", deal.enterprise)
    assert r.status_code == 200 and r.json()["state"] == "agreed" and r.json()["document_sha256"]

    versions = (
        await deal.client.get(f"{API}/contracts/{deal.contract_id}/versions", headers=deal.provider.headers)
    ).json()
    items = versions["items"]
    assert [v["version"] for v in items] == [1, 2]
    assert (versions["contract_id"], versions["total"], versions["page"], versions["page_size"]) == (
        deal.contract_id,
        2,
        1,
        20,
    )
    second = (
        await deal.client.get(
            f"{API}/contracts/{deal.contract_id}/versions?page=2&page_size=1", headers=deal.provider.headers
        )
    ).json()
    assert [v["version"] for v in second["items"]] == [2] and second["total"] == 2
    assert items[0]["terms"] == "第一版条款" and items[0]["return_reason"] == "定金比例过高，请调整"
    assert items[0]["agreed_at"] is None and items[1]["agreed_at"] is not None
    assert items[1]["total_fen"] == 10_000_000 and items[1]["return_reason"] is None

    # Each step tells who acts next (demands' notices): the enterprise reviews, the provider
    # revises, both sign; each with the snapshot its notice shows.
    told = await deal.events(notices=True)
    assert [t for t, _ in told] == [
        "contracts.contract_submitted",
        "contracts.contract_returned",
        "contracts.contract_submitted",
        "contracts.contract_agreed",
    ]
    first, returned, second, agreed = (p for _, p in told)
    assert (first["contract_version"], first["total_fen"], first["payable_fen"]) == (
        1,
        30_000_000,
        21_000_000,
    )
    assert first["product_name"] == "企业数字化诊断服务" and first["provider_name"] == "南宁数字化服务中心"
    assert first["enterprise_id"] == deal.enterprise.org_id and first["order_no"].startswith("ORD")
    assert (returned["contract_version"], returned["reason"]) == (1, "定金比例过高，请调整")
    assert returned["enterprise_name"] == "广西测试制造有限公司"
    assert (second["contract_version"], second["subsidy_fen"]) == (2, 5_000_000)
    assert (agreed["contract_version"], agreed["total_fen"]) == (2, 10_000_000)
    assert agreed["provider_id"] == deal.provider.org_id


async def test_an_agreed_contract_cannot_be_edited_submitted_or_returned(deal: Any) -> None:
    agreed = await deal.agreed()
    r = await deal.put(total_fen=1_000)
    assert r.status_code == 409 and r.json()["code"] == "contract_immutable"
    for action, who, body in (
        ("submit", deal.provider, None),
        ("return", deal.enterprise, {"reason": "再改"}),
    ):
        r = await deal.act(action, who, body)
        assert r.status_code == 409 and r.json()["code"] == "contract_state", r.text
    after = (await deal.contract()).json()
    assert after["total_fen"] == agreed["total_fen"] and after["state"] == "agreed" and after["version"] == 1


async def test_a_deposit_above_payable_is_refused_and_changes_nothing(deal: Any) -> None:
    await deal.drafted()
    assert (await deal.put(deposit_fen=1_000_000)).status_code == 200
    r = await deal.put(total_fen=30_000_000, deposit_fen=21_000_001)
    assert r.status_code == 422 and r.json()["code"] == "deposit_above_payable"
    assert r.json()["errors"][0]["field"] == "deposit_fen"
    assert (await deal.contract()).json()["deposit_fen"] == 1_000_000


@pytest.mark.parametrize("field", ["total_fen", "deposit_fen"])
@pytest.mark.parametrize("amount", LOOSE_AMOUNTS)
async def test_contract_amounts_are_json_integers_or_a_422_that_changes_nothing(
    deal: Any, field: str, amount: Any
) -> None:
    await deal.drafted()
    body = {"total_fen": 30_000_000, "deposit_fen": 6_000_000, "terms": "第一条 服务内容：企业数字化诊断。"}
    r = await deal.client.put(
        f"{API}/contracts/{deal.contract_id}", json={**body, field: amount}, headers=deal.provider.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": field, "message": "应为整数"}
    contract = (await deal.contract()).json()
    assert (contract["terms_set"], contract["version"]) == (False, 0)


async def test_zero_amount_stages_are_allowed(deal: Any) -> None:
    await deal.drafted(subsidy_reserved_fen=0, ratio_bp=0, voucher_id=None)
    r = await deal.put(total_fen=5_000_000, deposit_fen=0)
    assert r.status_code == 200 and r.json()["subsidy_fen"] == 0 and r.json()["balance_fen"] == 5_000_000


async def test_only_the_provider_edits_and_submits_and_only_the_enterprise_agrees_or_returns(
    deal: Any,
) -> None:
    await deal.drafted()
    r = await deal.put(who=deal.enterprise)
    assert r.status_code == 403 and r.json()["code"] == "wrong_party"
    assert (await deal.act("submit", deal.provider)).json()["code"] == "contract_incomplete"
    await deal.put()
    assert (await deal.act("submit", deal.enterprise)).json()["code"] == "wrong_party"
    await deal.act("submit", deal.provider)
    for action, body in (("agree", None), ("return", {"reason": "x"})):
        r = await deal.act(action, deal.provider, body)
        assert r.status_code == 403 and r.json()["code"] == "wrong_party"
    assert (await deal.contract()).json()["state"] == "pending_review"


async def test_another_organisation_neither_sees_nor_touches_the_contract(deal: Any) -> None:
    await deal.drafted()
    stranger = deal.h.issuer.member(caps=("enterprise", "provider"))
    assert (await deal.contract(stranger)).status_code == 404
    for path in ("", "/versions", "/document"):
        r = await deal.client.get(f"{API}/contracts/{deal.contract_id}{path}", headers=stranger.headers)
        assert r.status_code == 404 and r.json()["code"] == "contract_not_found"
    r = await deal.put(who=stranger)
    assert r.status_code == 404
    assert (await deal.contract()).json()["terms_set"] is False
    staff = deal.h.issuer.staff("reviewer")
    assert (await deal.contract(staff)).status_code == 200
    r = await deal.client.get(f"{API}/admin/contracts", params={"state": "drafting"}, headers=staff.headers)
    assert r.status_code == 200 and r.json()["total"] == 1 and r.json()["counts"]["drafting"] == 1
    r = await deal.client.get(f"{API}/admin/contracts", params={"state": "bogus"}, headers=staff.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await deal.client.get(f"{API}/admin/contracts", headers=deal.enterprise.headers)
    assert r.status_code == 403


async def test_a_suspended_provider_cannot_edit(deal: Any) -> None:
    await deal.drafted()
    await deal.suspend(deal.provider)
    r = await deal.put()
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert (await deal.contract()).json()["terms_set"] is False


async def test_a_provider_whose_certification_has_not_reached_contracts_is_asked_to_retry(deal: Any) -> None:
    """Contracts has no copy of the provider yet (its events are in flight): it cannot tell
    whether it is suspended, so it decides nothing (409 organization_syncing) until they arrive."""
    fresh = deal.with_unannounced_provider()
    await fresh.drafted()
    r = await fresh.put()
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["detail"]) == ("organization_syncing", "认证信息同步中，请稍后再试")
    assert (await fresh.contract()).json()["terms_set"] is False

    await fresh.announce(fresh.provider, "南宁新晋服务中心")
    assert (await fresh.put()).status_code == 200


async def test_a_redelivered_acceptance_makes_one_draft(deal: Any) -> None:
    doc = await deal.accept()
    await deal.h.redeliver(doc)
    await deal.h.settle()
    staff = deal.h.issuer.staff()
    r = await deal.client.get(f"{API}/admin/contracts", headers=staff.headers)
    assert r.json()["total"] == 1
