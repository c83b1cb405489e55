"""orders with the real quota service in the harness (catalog's and identity's reads faked):
20 orders racing on one voucher never overdraw it, each order's state matches its
reservation, and the voucher's reserved + used always equal the subsidies of the live orders."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from common.events import ContractSigned, OrganizationCertified, ProviderApproved
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
LIVE = ("awaiting_acceptance", "awaiting_contract", "awaiting_deposit", "awaiting_service")


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


async def orders_of(h: Any, enterprise: Any) -> list[dict[str, Any]]:
    r = await h.client("orders").get("/api/v1/me/orders?page_size=100", headers=enterprise.headers)
    return r.json()["items"]


async def reservations(q: Quota) -> dict[str, tuple[str, int, int]]:
    async with q.db.session() as s:
        rows = (
            await s.execute(
                text("SELECT order_id, state, amount_fen, committed_fen FROM voucher_reservations")
            )
        ).all()
    return {r.order_id: (r.state, r.amount_fen, r.committed_fen) for r in rows}


async def test_twenty_orders_racing_on_one_voucher_never_overdraw_it_and_match_their_reservations(
    saga,
) -> None:
    identity_app, files = fake_identity()
    catalog = FakeCatalog()
    h = await saga("quota", "orders", peers={"identity": identity_app, "catalog": catalog.app})
    q = Quota(h, files, catalog.products)
    async with q.db.transaction() as s:
        await put_campaign(s, q.year, campaign_spec(q.year))
    enterprise = await q.certified(name="广西示范制造有限公司")
    org = enterprise.org_id or ""
    await h.publish(
        OrganizationCertified(
            org_id=org, name="广西示范制造有限公司", uscc="91450100MA5L0DEM0X", kind="enterprise"
        ),
        aggregate_id=org,
        sequence=1,
    )
    provider = h.issuer.member(caps=("provider",))
    # orders knows the provider (its onboarding arrived long before its products sold), so the
    # twenty submissions decide on their copies and never wait on identity
    await h.publish(
        ProviderApproved(org_id=provider.org_id or "", name="广西示范科技服务有限公司"),
        aggregate_id=provider.org_id or "",
    )
    # 9,000元 at 50% -> 4,500元 an order; the base tier's 50,000元 voucher pays 11 in full and 500元 of one more
    product = catalog.add(
        provider.org_id or "", price_fen=9_000 * YUAN, max_subsidy_fen=10_000 * YUAN, category="企业诊断"
    )
    voucher = await q.voucher(org, 50_000 * YUAN)
    await h.settle()

    async def order() -> Any:
        return await h.client("orders").post(
            "/api/v1/orders",
            json={"product_id": product, "use_voucher": True},
            headers={**enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
        )

    answers = await asyncio.gather(*(order() for _ in range(20)))
    assert [r.status_code for r in answers] == [201] * 20
    assert {r.json()["subsidy_fen"] for r in answers} == {4_500 * YUAN}  # every quote saw the whole voucher
    await h.settle(within=60)

    rows = await orders_of(h, enterprise)
    held = await reservations(q)
    live = [o for o in rows if o["status"] == "awaiting_acceptance"]
    cancelled = [o for o in rows if o["status"] == "cancelled"]
    assert len(live) == 12 and len(cancelled) == 8
    assert sorted(o["subsidy_fen"] for o in live) == [500 * YUAN] + [4_500 * YUAN] * 11
    for o in live:
        assert held[o["id"]] == ("reserved", o["subsidy_fen"], 0)
    for o in cancelled:
        assert held[o["id"]][0] == "rejected" and o["subsidy_fen"] == 0
    v = await q.row(Voucher, voucher.id)
    assert v.remaining_fen == 0 and v.reserved_fen == 50_000 * YUAN == sum(o["subsidy_fen"] for o in live)

    # then: one cancelled while 待接单 (released), one signed for less than reserved (the rest released)
    e, p = enterprise.headers, provider.headers
    api = h.client("orders")
    gone, kept = live[0], live[1]
    assert (await api.post(f"/api/v1/orders/{gone['id']}/cancel", headers=e)).status_code == 200
    assert (await api.post(f"/api/v1/orders/{kept['id']}/accept", headers=p)).status_code == 200
    await h.settle()
    subsidy = min(kept["subsidy_fen"], 400 * YUAN)
    signed = ContractSigned(
        order_id=kept["id"],
        contract_id="c-1",
        enterprise_id=org,
        provider_id=provider.org_id or "",
        total_fen=2_000 * YUAN,
        subsidy_fen=subsidy,
        payable_fen=2_000 * YUAN - subsidy,
        deposit_fen=0,
        balance_fen=2_000 * YUAN - subsidy,
    )
    doc = await h.publish(signed, aggregate_id=kept["id"], sequence=1)
    await h.redeliver(doc)
    await h.settle()

    rows = {o["id"]: o for o in await orders_of(h, enterprise)}
    assert rows[gone["id"]]["status"] == "cancelled"
    detail = (await api.get(f"/api/v1/orders/{kept['id']}", headers=e)).json()
    assert detail["status"] == "awaiting_service" and detail["voucher_state"] == "committed"
    assert detail["subsidy_fen"] == subsidy and detail["committed_fen"] == subsidy
    gone_detail = (await api.get(f"/api/v1/orders/{gone['id']}", headers=e)).json()
    assert gone_detail["voucher_state"] == "released"
    v = await q.row(Voucher, voucher.id)
    live_subsidies = sum(o["subsidy_fen"] for o in rows.values() if o["status"] in LIVE)
    assert v.reserved_fen + v.used_fen == live_subsidies
    assert v.used_fen == subsidy
    assert v.total_fen == v.remaining_fen + v.reserved_fen + v.used_fen + v.expired_fen

    # and voucher-invariants agrees: every invariant between quota's and orders's databases holds
    urls = {name: h[name].runtime.settings.db_url for name in ("quota", "orders")}
    snapshot, results = await read_all(urls)
    assert all(res.ok for res in results if res.service in urls)
    report = check_all(snapshot)
    assert report.violations == [] and report.ran
