"""orders with the real quota and contracts services in the harness: an accepted order gets
its draft with the reservation; the enterprise's cancel while 待签合同 goes through contracts
(voided), the order is cancelled and quota releases the reservation; voucher-invariants holds."""

from __future__ import annotations

import sys
import uuid

import pytest

from common.events import OrganizationCertified, ProviderApproved
from common.logging import configure_logging
from common.testing.saga import fake_identity
from invariants.checks import check_all
from invariants.readers import read_all
from quota.domain.campaigns import campaign_spec
from quota.models import Voucher
from quota.service.campaigns import put_campaign
from quota.testing import Quota

from .conftest import FakeCatalog

YUAN = 100  # fen per yuan


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


async def test_a_cancel_while_awaiting_the_contract_is_voided_by_contracts_and_released_by_quota(
    saga,
) -> None:
    identity_app, files = fake_identity()
    catalog = FakeCatalog()
    h = await saga("quota", "orders", "contracts", peers={"identity": identity_app, "catalog": catalog.app})
    q = Quota(h, files, catalog.products)
    async with q.db.transaction() as s:
        await put_campaign(s, q.year, campaign_spec(q.year))
    enterprise = await q.certified(name="广西示范制造有限公司")
    org = enterprise.org_id or ""
    provider = h.issuer.member(caps=("provider",))
    await h.publish(
        OrganizationCertified(
            org_id=org, name="广西示范制造有限公司", uscc="91450100MA5L0DEM0X", kind="enterprise"
        ),
        aggregate_id=org,
        sequence=1,
    )
    await h.publish(
        ProviderApproved(org_id=provider.org_id or "", name="广西示范科技服务有限公司"),
        aggregate_id=provider.org_id or "",
        sequence=1,
    )
    product = catalog.add(provider.org_id or "", price_fen=300_000 * YUAN, max_subsidy_fen=150_000 * YUAN)
    voucher = await q.voucher(org, 50_000 * YUAN)
    await h.settle()

    api = h.client("orders")
    r = await api.post(
        "/api/v1/orders",
        json={"product_id": product, "use_voucher": True},
        headers={**enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    order = r.json()
    await h.settle()
    assert (
        await api.post(f"/api/v1/orders/{order['id']}/accept", headers=provider.headers)
    ).status_code == 200
    await h.settle()

    draft = await h.client("contracts").get(
        f"/api/v1/orders/{order['id']}/contract", headers=enterprise.headers
    )
    assert draft.status_code == 200, draft.text
    assert draft.json()["state"] == "drafting"
    assert (await q.row(Voucher, voucher.id)).reserved_fen == 50_000 * YUAN

    r = await api.post(
        f"/api/v1/orders/{order['id']}/cancel", json={"reason": "预算调整"}, headers=enterprise.headers
    )
    assert r.status_code == 200 and r.json()["status"] == "awaiting_contract"
    await h.settle()

    seen = (await api.get(f"/api/v1/orders/{order['id']}", headers=enterprise.headers)).json()
    assert seen["status"] == "cancelled" and seen["cancelled_by"] == "enterprise"
    assert seen["voucher_state"] == "released"
    contract = await h.client("contracts").get(
        f"/api/v1/orders/{order['id']}/contract", headers=enterprise.headers
    )
    assert contract.json()["state"] == "voided"
    v = await q.row(Voucher, voucher.id)
    assert (v.reserved_fen, v.used_fen, v.remaining_fen) == (0, 0, 50_000 * YUAN)

    urls = {name: h[name].runtime.settings.db_url for name in ("quota", "orders", "contracts")}
    snapshot, _results = await read_all(urls)
    assert check_all(snapshot).violations == []
