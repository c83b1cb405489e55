"""orders with the real payments service: the enterprise's transfers, confirmed by the payee,
move the order 待支付 -> 待服务 and, after the service, -> 已完成; the completion opens the
settlement claim in payments; what orders shows as paid is what payments confirmed."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest

from common.events import BankAccountChanged
from common.logging import configure_logging
from invariants.checks import check_all
from invariants.readers import read_all

YUAN = 100  # fen per yuan
TOTAL, SUBSIDY, DEPOSIT = 40 * YUAN, 10 * YUAN, 8 * YUAN  # the manual's 8.4: 40元, 券 10元, 定金 8元
PAYABLE = TOTAL - SUBSIDY


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging("WARNING", json=False, stream=sys.stderr)


async def test_confirmed_transfers_move_the_order_to_service_and_completion_and_open_the_settlement(
    world,
) -> None:
    w = await world(also=("payments",))
    pay = w.h.client("payments")
    provider_org = w.provider.org_id or ""
    await w.emit(
        BankAccountChanged(
            org_id=provider_org,
            account_name="广西示范科技服务有限公司",
            bank_name="中国建设银行",
            bank_region="广西南宁",
            branch_name="南宁民族大道支行",
            account_number="4500123456789",
        ),
        provider_org,
    )
    w.catalog.products[w.product_id].update(platform_price_fen=TOTAL, max_subsidy_fen=SUBSIDY)
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    await w.post(order, "accept", w.provider)
    await w.signed(order, TOTAL, SUBSIDY, DEPOSIT)
    await w.settle()
    plan = (await pay.get(f"/api/v1/orders/{order['id']}/payment", headers=w.enterprise.headers)).json()
    assert plan["payable_fen"] == PAYABLE and plan["payable_upper"] == "叁拾元整"

    async def transfer(amount: int) -> None:
        r = await pay.post(
            f"/api/v1/orders/{order['id']}/remittances",
            json={
                "amount_fen": amount,
                "bank_reference": f"BR-{uuid.uuid4().hex[:8]}",
                "payer_account": "6222",
            },
            headers={**w.enterprise.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        c = await pay.post(f"/api/v1/remittances/{r.json()['id']}/confirm", headers=w.provider.headers)
        assert c.status_code == 200, c.text

    await transfer(5 * YUAN)  # 定金 in two installments
    await w.settle()
    assert (await w.get(order))["status"] == "awaiting_deposit"
    await transfer(3 * YUAN)
    await w.settle()
    seen = await w.get(order)
    assert (
        seen["status"] == "awaiting_service" and seen["paid_fen"] == DEPOSIT and seen["deposit_met"] is True
    )

    await w.post(order, "start-service", w.provider)
    await w.post(order, "complete-service", w.provider)
    await transfer(PAYABLE - DEPOSIT)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "completed" and seen["fully_paid"] is True and seen["outstanding_fen"] == 0
    assert [s["amount_fen"] for s in seen["timeline"] if s["step"] == "payment_received"] == [500, 300, 2200]

    claims: dict[str, Any] = (await pay.get("/api/v1/me/settlements", headers=w.provider.headers)).json()
    assert [(c["order_id"], c["amount_fen"], c["state"]) for c in claims["items"]] == [
        (order["id"], SUBSIDY, "open")
    ]

    urls = {name: w.h[name].runtime.settings.db_url for name in ("orders", "payments")}
    snapshot, _results = await read_all(urls)
    assert check_all(snapshot).violations == []
