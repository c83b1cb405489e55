"""Orders' part in a termination (DESIGN.md "Termination"): it decides what must not happen
together with a termination, the service's completion, under the order's lock: it agrees and
freezes the order (支付, 取消订单, 开始服务 and 服务完成 are not offered and are refused) until
the contract is terminated or the request withdrawn, or refuses once the service is complete.
A cancellation contracts refused clears the pending marker and shows why (it never waits
forever). On both transports."""

from __future__ import annotations

import uuid

from common.events import CancellationRefused, TerminationRequested, TerminationWithdrawn

YUAN = 100


async def signed_order(w, *, deposit: int = 50_000 * YUAN) -> dict:
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.signed(order, 300_000 * YUAN, 0, deposit)
    await w.settle()
    return order


def contract_id(order: dict) -> str:
    return f"contract-{order['id'][:8]}"


async def test_a_cancellation_contracts_refused_clears_the_marker_and_shows_why(world) -> None:
    w = await world()
    order = await signed_order(w)
    await w.post(order, "cancel", w.enterprise, json={"reason": "项目取消"})
    await w.settle()
    r = await w.api.post(f"/api/v1/orders/{order['id']}/cancel", headers=w.enterprise.headers)
    assert r.status_code == 409 and r.json()["code"] == "cancellation_pending"
    await w.emit(
        CancellationRefused(
            order_id=order["id"],
            contract_id=contract_id(order),
            reason_code="order_already_paid",
            reason="企业已支付款项，订单不能取消，如有争议请联系平台",
            requested_by="enterprise",
        ),
        order["id"],
        twice=True,
    )
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_deposit" and seen["cancel_requested_in"] is None
    assert seen["cancel_refused_reason"] == "企业已支付款项，订单不能取消，如有争议请联系平台"
    assert [s["label"] for s in seen["timeline"]][-1] == "取消订单未获同意"
    assert seen["timeline"][-1]["detail"] == seen["cancel_refused_reason"]


async def test_a_refusal_heard_before_the_signing_waits_for_it(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.post(order, "cancel", w.enterprise)
    signed = w.signed_event(order, 300_000 * YUAN, 0, 50_000 * YUAN)
    refusal = CancellationRefused(
        order_id=order["id"],
        contract_id=contract_id(order),
        reason_code="already_signed",
        reason="合同已签署，订单不能取消",
        requested_by="enterprise",
    )
    await w.emit(refusal, order["id"], sequence=2)  # contracts' refusal came after its signing (1)
    await w.emit(signed, order["id"], sequence=1)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_deposit" and seen["contract_id"] == contract_id(order)
    assert seen["cancel_requested_in"] is None and seen["actions"] == ["cancel", "pay", "view_contract"]


async def test_a_staff_termination_orders_agreed_to_freezes_the_order_until_it_is_withdrawn(world) -> None:
    w = await world()
    order = await signed_order(w, deposit=0)  # 待服务: the provider may start
    request_id = str(uuid.uuid4())
    await w.emit(
        TerminationRequested(
            order_id=order["id"],
            contract_id=contract_id(order),
            request_id=request_id,
            reason="服务纠纷",
            requested_by="administrator",
        ),
        order["id"],
    )
    await w.settle()
    seen = await w.get(order)
    assert seen["termination_pending"] is True and seen["actions"] == ["view_contract"]
    assert [
        p["request_id"] for t, p in await w.published(order["id"]) if t == "orders.termination_agreed"
    ] == [request_id]
    r = await w.api.post(f"/api/v1/orders/{order['id']}/start-service", headers=w.provider.headers)
    assert r.status_code == 409 and r.json()["code"] == "termination_pending", r.text
    assert "终止" in r.json()["detail"]
    await w.emit(
        TerminationWithdrawn(
            order_id=order["id"],
            contract_id=contract_id(order),
            request_id=request_id,
            reason_code="settlement_paid",
            reason="该合同的服务券已兑付，不能终止合同",
        ),
        order["id"],
    )
    await w.settle()
    seen = await w.get(order, w.provider)
    assert seen["termination_pending"] is False and seen["actions"] == ["start_service", "view_contract"]
    assert seen["timeline"][-1]["label"] == "合同终止未获同意"


async def test_an_unpaid_order_being_terminated_offers_neither_pay_nor_cancel(world) -> None:
    w = await world()
    order = await signed_order(w)
    assert (await w.get(order))["actions"] == ["cancel", "pay", "view_contract"]
    await w.emit(
        TerminationRequested(
            order_id=order["id"],
            contract_id=contract_id(order),
            request_id=str(uuid.uuid4()),
            reason="服务纠纷",
            requested_by="administrator",
        ),
        order["id"],
    )
    await w.settle()
    seen = await w.get(order)
    assert seen["actions"] == ["view_contract"] and seen["status_label"] == "待支付"
    r = await w.api.post(f"/api/v1/orders/{order['id']}/cancel", headers=w.enterprise.headers)
    assert r.status_code == 409 and r.json()["code"] == "termination_pending"


async def test_a_served_order_refuses_the_termination_and_stays_as_it_is(world) -> None:
    w = await world()
    order = await signed_order(w, deposit=0)
    await w.post(order, "start-service", w.provider)
    await w.post(order, "complete-service", w.provider)
    request_id = str(uuid.uuid4())
    doc = await w.emit(
        TerminationRequested(
            order_id=order["id"],
            contract_id=contract_id(order),
            request_id=request_id,
            reason="服务质量纠纷",
            requested_by="administrator",
        ),
        order["id"],
    )
    await w.h.redeliver(doc)
    await w.settle()
    refusals = [p for t, p in await w.published(order["id"]) if t == "orders.termination_refused"]
    assert [(p["request_id"], p["reason_code"]) for p in refusals] == [(request_id, "service_completed")]
    seen = await w.get(order)
    assert seen["status"] == "awaiting_balance" and seen["termination_pending"] is False
    assert "pay" in seen["actions"] and seen["cancel_refused_reason"].startswith("服务已完成")
