"""Campaigns: the public policy page as the manual shows it, administrators' changes (which
never alter an issued voucher), and the demo seed (idempotent)."""

from __future__ import annotations

from datetime import date

import pytest

from common import demo
from common.testing.data import LOOSE_AMOUNTS
from quota.domain.campaigns import POLICY_TEXTS, WINDOWS_2024, campaign_spec
from quota.models import Voucher
from quota.seed import seed_demo
from quota.testing import API, Quota

pytestmark = pytest.mark.parametrize("transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker)])


async def test_the_current_campaign_shows_the_manuals_policy_texts_windows_and_tier_table(
    quota: Quota,
) -> None:
    r = await quota.client.get(f"{API}/campaigns/current")
    assert r.status_code == 200
    doc = r.json()
    assert doc["year"] == quota.year and doc["pending_budget_fen"] == 5_000_000_000
    assert (
        doc["provider_yearly_cap_fen"] == 500_000_000
    )  # 服务机构年度上限 500万元, next to the enterprises' caps
    assert [t["label"] for t in doc["tiers"]] == ["5万", "10万", "20万", "30万"]
    assert doc["tiers"][0]["designations"] == ["一般规模以上制造业企业"]
    assert "专精特新“小巨人”企业" in doc["tiers"][3]["designations"]
    types = {t["voucher_type"]: t for t in doc["voucher_types"]}
    assert list(types) == ["general", "financing_guarantee", "equipment_leasing"]
    assert types["financing_guarantee"]["policy_text"] == POLICY_TEXTS["financing_guarantee"]
    assert "按不超过实际担保费的50%给予服务券额度" in types["financing_guarantee"]["policy_text"]
    assert (
        types["financing_guarantee"]["yearly_cap_fen"],
        types["financing_guarantee"]["basis_share_bp"],
    ) == (100_000_000, 5000)
    assert (types["equipment_leasing"]["yearly_cap_fen"], types["equipment_leasing"]["basis_share_bp"]) == (
        50_000_000,
        2000,
    )
    assert types["general"]["ratio_bp"] == 5000 and types["general"]["voucher_type_label"] == "通用券"
    assert types["general"]["valid_label"] == f"{quota.year}年01月01日~{quota.year}年12月31日"
    assert types["equipment_leasing"]["categories"] == ["直接设备租赁"]
    listed = (await quota.client.get(f"{API}/voucher-types")).json()
    assert [t["voucher_type"] for t in listed["items"]] == list(types)


async def test_an_administrator_changes_a_campaign_and_issued_vouchers_keep_their_terms(quota: Quota) -> None:
    admin = quota.h.issuer.staff("administrator")
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 5_000_000)
    spec = campaign_spec(quota.year)
    spec["types"][0].update(ratio_bp=3000, valid_from=date(quota.year, 3, 1))
    spec["pending_budget_fen"] = 1
    body = _json(spec)
    r = await quota.client.put(f"{API}/admin/campaigns/{quota.year}", json=body, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["voucher_types"][0]["ratio_bp"] == 3000
    kept = await quota.row(Voucher, voucher.id)
    assert (kept.ratio_bp, kept.valid_from, kept.total_fen) == (5000, date(quota.year, 1, 1), 5_000_000)
    created = await quota.client.put(
        f"{API}/admin/campaigns/2024",
        json=_json(campaign_spec(2024, WINDOWS_2024)),
        headers=admin.headers,
    )
    assert created.status_code == 201
    assert await quota.scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'campaign.%'") == 2


@pytest.mark.parametrize("where", ["tiers.0.amount_fen", "types.0.yearly_cap_fen", "pending_budget_fen"])
@pytest.mark.parametrize("amount", LOOSE_AMOUNTS)
async def test_campaign_amounts_are_json_integers_or_a_422_that_changes_nothing(
    quota: Quota, where: str, amount: object
) -> None:
    body = _json(campaign_spec(quota.year))
    *path, last = where.split(".")
    target = body
    for key in path:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = amount
    admin = quota.h.issuer.staff("administrator")
    r = await quota.client.put(f"{API}/admin/campaigns/{quota.year}", json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {"field": where, "message": "应为整数"}
    assert await quota.scalar("SELECT count(*) FROM audit_log") == 0


async def test_a_bad_campaign_or_a_non_administrator_changes_nothing(quota: Quota) -> None:
    admin = quota.h.issuer.staff("administrator")
    good = _json(campaign_spec(quota.year))
    inverted = _json(campaign_spec(quota.year))
    inverted["types"][1]["valid_from"], inverted["types"][1]["valid_to"] = (
        f"{quota.year}-12-31",
        f"{quota.year}-01-01",
    )
    twice = _json(campaign_spec(quota.year))
    twice["types"][2]["voucher_type"] = "general"
    no_share = _json(campaign_spec(quota.year))
    no_share["types"][1]["basis_share_bp"] = None
    zero_tier = _json(campaign_spec(quota.year))
    zero_tier["tiers"][0]["amount_fen"] = 0
    for body, code in (
        (inverted, "campaign_invalid"),
        (twice, "campaign_invalid"),
        (no_share, "campaign_invalid"),
        (zero_tier, "validation_error"),
    ):
        r = await quota.client.put(f"{API}/admin/campaigns/{quota.year}", json=body, headers=admin.headers)
        assert (r.status_code, r.json()["code"]) == (422, code), r.text
    reviewer = quota.h.issuer.staff("reviewer")
    r = await quota.client.put(f"{API}/admin/campaigns/{quota.year}", json=good, headers=reviewer.headers)
    assert r.status_code == 403
    r = await quota.client.put(f"{API}/admin/campaigns/1999", json=good, headers=admin.headers)
    assert r.status_code == 422
    current = (await quota.client.get(f"{API}/campaigns/current")).json()
    assert current["voucher_types"][1]["valid_from"] == f"{quota.year}-01-01"
    assert await quota.scalar("SELECT count(*) FROM audit_log") == 0


async def test_the_demo_seed_gives_the_demo_enterprise_its_10wan_voucher_once(quota: Quota) -> None:
    for _ in range(2):
        async with quota.db.transaction() as s:
            await seed_demo(s)
    assert await quota.scalar("SELECT count(*) FROM campaigns") == 2
    history = (await quota.client.get(f"{API}/campaigns/current")).json()
    assert history["year"] == quota.year
    assert (
        await quota.scalar(
            "SELECT valid_from::text FROM campaign_voucher_types WHERE year = 2024 AND voucher_type = 'general'"
        )
        == "2024-09-13"
    )
    owner = quota.h.issuer.member(demo.ENTERPRISE.id, caps=("enterprise",))
    shown = (await quota.client.get(f"{API}/me/vouchers", headers=owner.headers)).json()["items"][0]
    assert (shown["state_label"], shown["total_fen"], shown["tier"]) == (
        "去使用",
        10_000_000,
        "创新型中小企业",
    )
    assert await quota.scalar("SELECT count(*) FROM vouchers") == 1


def _json(spec: dict) -> dict:
    import json

    return json.loads(json.dumps(spec, default=str))
