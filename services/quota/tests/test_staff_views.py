"""What staff see of the ledger: every voucher with its balances, filtered; enterprises see none of it."""

from __future__ import annotations

import pytest

from quota.testing import API, Quota

pytestmark = pytest.mark.parametrize(
    "transport_kind", [pytest.param("rabbitmq", marks=pytest.mark.broker), "inprocess"]
)


async def test_staff_list_vouchers_with_their_balances_and_an_enterprise_may_not(quota: Quota) -> None:
    a, b = await quota.certified(name="广西甲制造有限公司"), await quota.certified(name="广西乙制造有限公司")
    va = await quota.voucher(str(a.org_id), 5_000_000)
    await quota.voucher(str(b.org_id), 10_000_000)
    finance = quota.h.issuer.staff("finance")
    r = await quota.client.get(f"{API}/admin/vouchers", headers=finance.headers)
    assert r.status_code == 200 and r.json()["total"] == 2
    # names, copied from the application at issue: no call per row
    assert {v["enterprise_name"] for v in r.json()["items"]} == {"广西甲制造有限公司", "广西乙制造有限公司"}
    r = await quota.client.get(
        f"{API}/admin/vouchers?enterprise_id={a.org_id}&page_size=1", headers=finance.headers
    )
    assert [(v["voucher_no"], v["total_fen"], v["remaining_fen"]) for v in r.json()["items"]] == [
        (va.voucher_no, 5_000_000, 5_000_000)
    ]
    assert (await quota.client.get(f"{API}/admin/vouchers", headers=a.headers)).status_code == 403
