"""服务券兑付: a claim opens when the order completes, for the committed subsidy; the provider
claims with its three kinds of documents; finance approves (or rejects: the provider may claim
again), then pays -> ``payments.settlement_paid``; bad steps refused with nothing changed."""

from __future__ import annotations

import dataclasses
import uuid

from common.events import OrganizationSuspended
from common.reads import AuditFeed, PortalStats
from common.testing.saga import known_org

API = "/api/v1"


async def completed_deal(deal_factory, **figures):
    deal = await deal_factory(**figures)
    if deal.payable_fen:
        await deal.confirmed(deal.payable_fen)
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)
    await deal.h.settle()
    return deal


def documents(deal, receipt=None) -> dict[str, list[str]]:
    return {
        "invoice_file_ids": [deal.file(deal.provider, "发票.pdf")],
        "receipt_file_ids": [receipt or deal.file(deal.provider, "到账回单.pdf")],
        "proof_file_ids": [
            deal.file(deal.provider, "服务完成确认单.pdf"),
            deal.file(deal.provider, "验收报告.pdf"),
        ],
    }


async def act(deal, settlement_id: str, action: str, who=None, **body):
    path = (
        f"{API}/settlements/{settlement_id}/claim"
        if action == "claim"
        else f"{API}/admin/settlements/{settlement_id}/{action}"
    )
    default = deal.provider if action == "claim" else deal.finance
    return await deal.client.post(path, json=body or None, headers=(who or default).headers)


async def test_claim_approve_pay_settles_the_committed_subsidy_and_announces_it(deal_factory) -> None:
    deal = await completed_deal(deal_factory)
    claim = await deal.settlement()
    assert claim is not None
    assert (claim["state"], claim["state_label"], claim["amount_fen"]) == ("open", "待申请兑付", 1000)
    assert claim["order_no"] == deal.order_no and claim["actions"] == ["claim"]
    assert claim["amount_upper"] == "壹拾元整"

    r = await act(deal, claim["id"], "claim", **documents(deal))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "claimed" and r.json()["state_label"] == "待审核"
    queue = await deal.client.get(f"{API}/admin/settlements?state=claimed", headers=deal.finance.headers)
    assert queue.status_code == 200 and [s["id"] for s in queue.json()["items"]] == [claim["id"]]
    assert queue.json()["items"][0]["actions"] == ["approve", "reject"]
    row = queue.json()["items"][0]
    assert (row["enterprise_name"], row["provider_name"], row["product_name"]) == (
        "广西某某机械制造有限公司",
        "广西某某科技服务有限公司",
        "数字化转型诊断服务",
    )

    r = await act(deal, claim["id"], "approve")
    assert r.status_code == 200 and r.json()["state"] == "approved"
    r = await act(deal, claim["id"], "pay", payout_reference="PAYOUT-2024-0001")
    assert (
        r.status_code == 200
        and r.json()["state"] == "paid"
        and r.json()["payout_reference"] == "PAYOUT-2024-0001"
    )

    [approved] = await deal.published("payments.settlement_approved")
    assert (approved["settlement_id"], approved["provider_id"], approved["amount_fen"]) == (
        claim["id"],
        deal.provider.org_id,
        1000,
    )
    [paid] = await deal.published("payments.settlement_paid")
    assert paid == {
        "order_id": deal.order_id,
        "settlement_id": claim["id"],
        "provider_id": deal.provider.org_id,
        "amount_fen": 1000,
        "payout_reference": "PAYOUT-2024-0001",
        "order_no": deal.order_no,
    }
    stats = await deal.client.get(
        "/internal/stats", headers={"Authorization": f"Bearer {service_token(deal)}"}
    )
    assert stats.status_code == 200 and stats.json() == {"settled_fen": 1000}
    assert PortalStats.model_validate(stats.json()).model_dump(mode="json") == stats.json()
    audit = await deal.rows("SELECT action, actor_role, target_id FROM audit_log ORDER BY id")
    assert [a["action"] for a in audit] == ["settlement.approve", "settlement.pay"]
    assert {a["target_id"] for a in audit} == {claim["id"]}
    # the same decisions as the gateway reads them, through the contract, field for field
    feed = await deal.client.get(
        "/internal/audit-log", headers={"Authorization": f"Bearer {service_token(deal)}"}
    )
    assert [e["action"] for e in feed.json()["items"]] == ["settlement.pay", "settlement.approve"]
    assert AuditFeed.model_validate(feed.json()).model_dump(mode="json") == feed.json()


def service_token(deal) -> str:
    from common.auth import issue_service_token

    return issue_service_token(deal.h["payments"].runtime.settings.service_token_secret, "gateway")


async def test_the_enterprises_transfer_receipt_may_be_the_claims_receipt(deal_factory) -> None:
    deal = await deal_factory()
    receipt = deal.file(deal.enterprise, "企业转账回单.pdf")
    remittance = await deal.remitted(deal.payable_fen, receipt_file_ids=[receipt])
    await deal.decide(remittance)
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)
    await deal.h.settle()
    claim = await deal.settlement()
    r = await act(deal, claim["id"], "claim", **documents(deal, receipt=receipt))
    assert r.status_code == 200 and r.json()["receipt_file_ids"] == [receipt]
    # but not another enterprise's file that this order never saw
    deal2 = await completed_deal(deal_factory)
    claim2 = await deal2.settlement()
    r = await act(deal2, claim2["id"], "claim", **documents(deal2, receipt=deal2.file(deal2.enterprise)))
    assert r.status_code == 422 and r.json()["code"] == "file_not_owned"


async def test_a_rejected_claim_may_be_claimed_again_with_corrected_documents(deal_factory) -> None:
    deal = await completed_deal(deal_factory)
    claim = await deal.settlement()
    await act(deal, claim["id"], "claim", **documents(deal))
    no_reason = await act(deal, claim["id"], "reject")
    assert no_reason.status_code == 422
    r = await act(deal, claim["id"], "reject", reason="发票抬头与合同不符")
    assert (
        r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["state_label"] == "审核不通过"
    )
    assert (await deal.settlement())["reject_reason"] == "发票抬头与合同不符"
    [rejected] = await deal.published("payments.settlement_rejected")  # the provider is told why
    assert (rejected["settlement_id"], rejected["reason"], rejected["order_no"]) == (
        claim["id"],
        "发票抬头与合同不符",
        deal.order_no,
    )
    assert (await deal.settlement())["actions"] == ["claim"]
    again = await act(deal, claim["id"], "claim", **documents(deal))
    assert (
        again.status_code == 200
        and again.json()["state"] == "claimed"
        and again.json()["reject_reason"] is None
    )


async def test_every_bad_claim_or_payout_is_a_clear_problem_and_changes_nothing(deal_factory) -> None:
    deal = await completed_deal(deal_factory)
    claim = await deal.settlement()
    sid = claim["id"]

    for missing in ("invoice_file_ids", "receipt_file_ids", "proof_file_ids"):
        body = documents(deal)
        body[missing] = []
        r = await act(deal, sid, "claim", **body)
        assert r.status_code == 422 and r.json()["code"] == "files_required", missing
        assert r.json()["errors"][0]["field"] == missing
    foreign = documents(deal)
    foreign["invoice_file_ids"] = [deal.file(deal.other_provider)]
    r = await act(deal, sid, "claim", **foreign)
    assert r.status_code == 422 and r.json()["code"] == "file_not_owned"
    r = await act(deal, sid, "claim", who=deal.other_provider, **documents(deal))  # another provider
    assert r.status_code == 404 and r.json()["code"] == "settlement_not_found"
    r = await act(deal, sid, "claim", who=deal.enterprise, **documents(deal))
    assert r.status_code == 403
    r = await act(deal, sid, "pay", payout_reference="P-1")  # a payout before approval
    assert r.status_code == 409 and r.json()["code"] == "settlement_not_approved"
    r = await act(deal, sid, "approve")  # nothing claimed yet
    assert r.status_code == 409 and r.json()["code"] == "settlement_not_claimed"
    r = await act(deal, sid, "approve", who=deal.provider)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    r = await act(deal, str(uuid.uuid4()), "approve")
    assert r.status_code == 404
    assert (await deal.settlement()) == claim

    assert (await act(deal, sid, "claim", **documents(deal))).status_code == 200
    r = await act(deal, sid, "claim", **documents(deal))  # a second claim
    assert r.status_code == 409 and r.json()["code"] == "settlement_already_claimed"
    r = await act(deal, sid, "pay", payout_reference="P-1")  # claimed, not approved
    assert r.status_code == 409 and r.json()["code"] == "settlement_not_approved"
    assert (await act(deal, sid, "approve")).status_code == 200
    r = await act(deal, sid, "pay")
    assert r.status_code == 422  # the payout reference is required
    assert (await act(deal, sid, "pay", payout_reference="P-1")).status_code == 200
    r = await act(deal, sid, "pay", payout_reference="P-2")
    assert r.status_code == 409 and r.json()["code"] == "settlement_already_paid"
    assert len(await deal.published("payments.settlement_paid")) == 1
    assert len(await deal.rows("SELECT id FROM settlement_claims")) == 1


async def test_a_suspended_provider_cannot_claim_but_its_payments_go_on(deal_factory) -> None:
    deal = await deal_factory()
    pending = await deal.remitted(deal.payable_fen)
    suspended = known_org(deal.h.peers["identity"], deal.provider.org_id)
    suspended.suspended, suspended.suspended_reason = True, "违规"  # identity says so when asked
    await deal.h.publish(
        OrganizationSuspended(org_id=deal.provider.org_id, reason="违规"),
        aggregate_id=deal.provider.org_id,
        sequence=2,
    )
    await deal.h.settle()
    assert (await deal.decide(pending)).status_code == 200  # what is owed goes on
    await deal.h.publish(deal.completed(), aggregate_id=deal.order_id, sequence=5)
    await deal.h.settle()
    claim = await deal.settlement()
    r = await act(deal, claim["id"], "claim", **documents(deal))
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert (await deal.settlement())["state"] == "open"


async def test_a_suspension_identity_knows_stops_a_claim_before_payments_heard_of_the_provider(
    deal_factory,
) -> None:
    """payments has no copy of the provider (its events are in flight): the claim is decided
    on identity's answer, not on the missing copy."""
    deal = await completed_deal(deal_factory)
    suspended = known_org(deal.h.peers["identity"], deal.provider.org_id)
    suspended.suspended, suspended.suspended_reason = True, "违规"
    claim = await deal.settlement()
    r = await act(deal, claim["id"], "claim", **documents(deal))
    assert r.status_code == 403 and r.json()["code"] == "organization_suspended"
    assert (await deal.settlement())["state"] == "open"


async def test_an_order_without_subsidy_opens_no_claim(deal_factory) -> None:
    deal = await completed_deal(deal_factory, subsidy_fen=0, deposit_fen=0)
    assert await deal.settlement() is None
    assert await deal.rows("SELECT id FROM settlement_claims") == []


async def test_a_document_backs_one_claim_only(deal_factory) -> None:
    first = await completed_deal(deal_factory)
    claim = await first.settlement()
    files = documents(first)
    assert (await act(first, claim["id"], "claim", **files)).status_code == 200
    # a second order between the same parties: the same invoice, receipt and proof again
    second = dataclasses.replace(first, order_id=str(uuid.uuid4()), keys=[])
    await second.h.publish(second.signed(), aggregate_id=second.order_id, sequence=1)
    await second.h.settle()
    await second.confirmed(second.payable_fen)
    await second.h.publish(second.completed(), aggregate_id=second.order_id, sequence=5)
    await second.h.settle()
    claim2 = await second.settlement()
    for field in ("invoice_file_ids", "receipt_file_ids", "proof_file_ids"):
        reused = documents(second) | {field: files[field]}
        r = await act(second, claim2["id"], "claim", **reused)
        assert r.status_code == 409 and r.json()["code"] == "file_already_claimed", r.text
        assert r.json()["errors"][0]["field"] == field
        assert (await second.settlement())["state"] == "open"  # nothing changed
    # one file cannot be two of a claim's documents either
    own = documents(second)
    r = await act(second, claim2["id"], "claim", **(own | {"proof_file_ids": own["invoice_file_ids"]}))
    assert r.status_code == 422 and r.json()["code"] == "file_duplicated"
    assert (await act(second, claim2["id"], "claim", **own)).status_code == 200


async def test_a_rejected_claim_may_name_its_own_documents_again(deal_factory) -> None:
    deal = await completed_deal(deal_factory)
    claim = await deal.settlement()
    files = documents(deal)
    await act(deal, claim["id"], "claim", **files)
    await act(deal, claim["id"], "reject", reason="发票抬头与合同不符")
    files["invoice_file_ids"] = [deal.file(deal.provider, "新发票.pdf")]
    r = await act(deal, claim["id"], "claim", **files)
    assert r.status_code == 200, r.text
