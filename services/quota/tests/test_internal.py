"""quota's internal reads as their contracts (common.reads) say: orders and catalog parse the
quote with ``Quote``, another service's screen the vouchers with ``VoucherBalances``."""

from __future__ import annotations

import pytest

from common.auth import issue_service_token
from common.reads import Quote, VoucherBalances
from quota.testing import Quota

pytestmark = pytest.mark.parametrize("transport_kind", ["inprocess"])


def service(quota: Quota) -> dict[str, str]:
    secret = quota.h["quota"].runtime.settings.service_token_secret
    return {"Authorization": f"Bearer {issue_service_token(secret, 'orders')}"}


async def test_the_quote_is_the_contract_orders_and_catalog_parse(quota: Quota) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 5_000_000)
    q = {
        "enterprise_id": ent.org_id,
        "provider_id": "prov",
        "category": "数字化转型",
        "price_fen": 7600,
        "max_subsidy_fen": 5000,
    }
    r = await quota.client.get("/internal/quote", params=q, headers=service(quota))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "voucher_id": voucher.id,
        "voucher_no": voucher.voucher_no,
        "voucher_type": "general",
        "subsidy_fen": 3800,
        "ratio_bp": 5000,
        "remaining_fen": 5_000_000,
        "valid_from": voucher.valid_from.isoformat(),
        "valid_to": voucher.valid_to.isoformat(),
    }
    # every field, none lost or added
    assert Quote.model_validate(r.json()).model_dump(mode="json") == r.json()


async def test_the_vouchers_are_the_contract_of_their_balances(quota: Quota) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 5_000_000)
    r = await quota.client.get(
        "/internal/vouchers", params={"enterprise_id": ent.org_id}, headers=service(quota)
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            {
                "id": voucher.id,
                "voucher_no": voucher.voucher_no,
                "campaign_year": quota.year,
                "voucher_type": "general",
                "tier": voucher.tier,
                "ratio_bp": 5000,
                "valid_from": voucher.valid_from.isoformat(),
                "valid_to": voucher.valid_to.isoformat(),
                "total_fen": 5_000_000,
                "remaining_fen": 5_000_000,
                "reserved_fen": 0,
                "used_fen": 0,
                "settled_fen": 0,
                "expired_fen": 0,
            }
        ]
    }
    assert VoucherBalances.model_validate(r.json()).model_dump(mode="json") == r.json()
    none = await quota.client.get(
        "/internal/vouchers", params={"enterprise_id": "nobody"}, headers=service(quota)
    )
    assert none.json() == {"items": []}
