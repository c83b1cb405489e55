"""The compensations of the saga on the order's side, on both transports: given an order,
when it is cancelled, rejected, timed out or its contract voided or terminated, expect the
status the saga table gives and the event the other services need."""

from __future__ import annotations

YUAN = 100  # fen per yuan


async def test_an_enterprise_cancelling_while_awaiting_acceptance_cancels_at_once_and_tells_quota(
    world,
) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    seen = await w.post(order, "cancel", w.enterprise, json={"reason": "不再需要该服务"})
    assert seen["status"] == "cancelled" and seen["status_label"] == "订单取消" and seen["tab"] == "cancelled"
    await w.settle()
    cancelled = dict(await w.published(order["id"]))["orders.order_cancelled"]
    assert cancelled["cancelled_by"] == "enterprise" and cancelled["reason"] == "不再需要该服务"
    # the provider can no longer accept it
    r = await w.api.post(f"/api/v1/orders/{order['id']}/accept", headers=w.provider.headers)
    assert r.status_code == 409 and r.json()["code"] == "order_state_conflict"
    assert "订单取消" in r.json()["detail"]


async def test_a_reservation_that_arrives_after_the_cancellation_is_recorded_and_the_order_stays_cancelled(
    world,
) -> None:
    w = await world()
    order = await w.submit()
    await w.post(order, "cancel", w.enterprise)  # while quota is still reserving
    await w.reserved(order)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "cancelled" and seen["voucher_state"] == "reserved"  # quota releases on cancel
    await w.emit(w.released_event(order, order["subsidy_fen"]), order["id"], twice=True)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "cancelled" and seen["voucher_state"] == "released"
    assert await w.published_types(order["id"]) == ["orders.order_submitted", "orders.order_cancelled"]


async def test_a_provider_rejecting_with_a_reason_cancels_the_order(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    assert order["status"] == "awaiting_acceptance" and order["subsidy_fen"] == 0
    r = await w.api.post(
        f"/api/v1/orders/{order['id']}/reject", json={"reason": "  "}, headers=w.provider.headers
    )
    assert r.status_code == 422
    seen = await w.post(order, "reject", w.provider, json={"reason": "该时段无法提供服务"})
    assert seen["status"] == "cancelled" and seen["cancel_reason"] == "该时段无法提供服务"
    await w.settle()
    cancelled = dict(await w.published(order["id"]))["orders.order_cancelled"]
    assert cancelled["cancelled_by"] == "provider"


async def test_a_rejected_reservation_cancels_the_order_with_quotas_reason(world) -> None:
    w = await world()
    order = await w.submit()
    await w.rejected(order, twice=True)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "cancelled" and seen["subsidy_fen"] == 0 and seen["voucher_state"] == "rejected"
    assert seen["cancel_reason"] == "服务券余额不足"
    cancelled = [b for t, b in await w.published(order["id"]) if t == "orders.order_cancelled"]
    assert len(cancelled) == 1 and cancelled[0]["cancelled_by"] == "voucher"
    assert cancelled[0]["reason_code"] == "nothing_left"


async def test_an_order_not_accepted_in_time_is_cancelled_by_its_durable_timer(world) -> None:
    w = await world({"acceptance_timeout_seconds": 2.0})
    order = await w.submit()
    await w.reserved(order)
    kept = await w.submit(use_voucher=False)
    await w.post(kept, "accept", w.provider)  # accepted in time: the timer leaves it alone

    async def cancelled() -> bool:
        return (await w.get(order))["status"] == "cancelled"

    await w.h.eventually(cancelled, within=10)
    await w.settle()
    seen = await w.get(order)
    assert seen["cancelled_by"] == "timeout" and "未接单" in seen["cancel_reason"]
    assert seen["timeline"][-1]["label"] == "接单超时，订单取消"
    cancelled_event = dict(await w.published(order["id"]))["orders.order_cancelled"]
    assert cancelled_event["cancelled_by"] == "timeout"
    assert (await w.get(kept))["status"] == "awaiting_contract"


async def test_cancelling_while_awaiting_the_contract_asks_contracts_and_the_void_cancels_the_order(
    world,
) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    await w.post(order, "accept", w.provider)
    seen = await w.post(order, "cancel", w.enterprise, json={"reason": "预算调整"})
    assert seen["status"] == "awaiting_contract" and seen["actions"] == []  # orders never cancels on its own
    r = await w.api.post(f"/api/v1/orders/{order['id']}/cancel", headers=w.enterprise.headers)
    assert r.status_code == 409 and r.json()["code"] == "cancellation_pending"
    await w.settle()
    requested = dict(await w.published(order["id"]))["orders.cancellation_requested"]
    assert requested == {
        "order_id": order["id"],
        "reason": "预算调整",
        "requested_by": "enterprise",
        "terminate_if_signed": False,
    }

    await w.voided(order, twice=True)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "cancelled" and seen["cancelled_by"] == "enterprise"
    assert await w.published_types(order["id"]) == [
        "orders.order_submitted",
        "orders.order_awaiting_acceptance",
        "orders.order_accepted",
        "orders.cancellation_requested",
        "orders.order_cancelled",
    ]


async def test_a_cancellation_that_loses_to_the_signing_leaves_the_order_signed(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.post(order, "cancel", w.enterprise)
    await w.signed(order, 10_000 * YUAN, 0, 2_000 * YUAN)  # contracts refused the void: the signing stands
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_deposit" and seen["actions"] == ["cancel", "pay", "view_contract"]


async def test_an_order_not_signed_in_time_asks_contracts_to_void_it(world) -> None:
    w = await world({"signing_timeout_seconds": 0.5})
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)

    async def requested() -> bool:
        return "orders.cancellation_requested" in await w.published_types(order["id"])

    await w.h.eventually(requested, within=10)
    await w.settle()
    body = dict(await w.published(order["id"]))["orders.cancellation_requested"]
    assert body["requested_by"] == "timeout" and body["terminate_if_signed"] is False
    assert (await w.get(order))["status"] == "awaiting_contract"
    await w.voided(order)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "cancelled" and seen["cancelled_by"] == "timeout"


async def test_cancelling_a_signed_order_with_nothing_paid_is_a_termination_request(world) -> None:
    w = await world()
    order = await w.submit()
    await w.reserved(order)
    await w.settle()
    await w.post(order, "accept", w.provider)
    await w.signed(order, 300_000 * YUAN, 90_000 * YUAN, 50_000 * YUAN)
    await w.emit(w.deducted_event(order, 90_000 * YUAN), order["id"])
    await w.settle()
    await w.post(order, "cancel", w.enterprise, json={"reason": "项目取消"})
    await w.settle()
    body = dict(await w.published(order["id"]))["orders.cancellation_requested"]
    assert body["terminate_if_signed"] is True and body["requested_by"] == "enterprise"
    await w.terminated(order, by="enterprise")
    await w.emit(w.reversed_event(order, 90_000 * YUAN), order["id"])
    await w.settle()
    seen = await w.get(order)
    assert (
        seen["status"] == "terminated" and seen["status_label"] == "订单取消" and seen["tab"] == "cancelled"
    )
    assert seen["voucher_state"] == "reversed" and seen["cancelled_by"] == "enterprise"


async def test_a_signed_order_with_a_payment_cannot_be_cancelled_but_staff_may_terminate_it(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    total, deposit = 40 * YUAN, 8 * YUAN
    await w.signed(order, total, 0, deposit)
    await w.paid(order, 3 * YUAN, 3 * YUAN, total, deposit)
    await w.settle()
    r = await w.api.post(f"/api/v1/orders/{order['id']}/cancel", headers=w.enterprise.headers)
    assert r.status_code == 409 and r.json()["code"] == "order_already_paid"
    await w.terminated(order)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "terminated" and seen["cancel_reason"] == "合同纠纷"
    assert seen["cancelled_by"] == "administrator" and seen["paid_fen"] == 3 * YUAN


async def test_a_contract_with_nothing_to_pay_goes_straight_to_service(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.signed(order, 76 * YUAN, 76 * YUAN, 0)  # payable 0: every stage met at once
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_service" and seen["fully_paid"] is True
    await w.post(order, "start-service", w.provider)
    done = await w.post(order, "complete-service", w.provider)
    assert done["status"] == "completed"
    await w.settle()
    assert (await w.published_types(order["id"]))[-2:] == [
        "orders.service_completed",
        "orders.order_completed",
    ]
