"""The order's side of the saga, step by step, on both transports: what the enterprise and
the provider see, and what orders tells the other services."""

from __future__ import annotations

import re

YUAN = 100  # fen per yuan


async def test_an_order_with_a_voucher_goes_from_submission_to_evaluation_as_the_saga_table_says(
    world,
) -> None:
    w = await world()
    e, p = w.enterprise, w.provider
    order = await w.submit()
    # 服务金额 300,000元, 服务券抵扣 90,000元 -> 实付 210,000元 (the manual's 订单详情)
    assert order["status"] == "pending_voucher" and order["status_label"] == "待接单"
    assert re.fullmatch(r"ORD\d{12}\d{3}", order["order_no"])
    assert (order["amount_fen"], order["subsidy_fen"], order["payable_fen"]) == (
        300_000 * YUAN,
        90_000 * YUAN,
        210_000 * YUAN,
    )
    assert order["payable_upper"] == "贰拾壹万元整"
    await w.settle()
    submitted = await w.published(order["id"])
    assert submitted[0][0] == "orders.order_submitted"
    assert submitted[0][1]["use_voucher"] is True and submitted[0][1]["voucher_type"] == "general"
    assert submitted[0][1]["enterprise_name"] == "广西示范制造有限公司"

    await w.reserved(order)
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_acceptance" and seen["voucher_state"] == "reserved"
    assert (await w.get(order, p))["actions"] == ["accept", "reject"]
    assert seen["actions"] == ["cancel"]
    awaiting = dict(await w.published(order["id"]))[
        "orders.order_awaiting_acceptance"
    ]  # the provider is told
    assert (awaiting["provider_id"], awaiting["order_no"]) == (p.org_id, order["order_no"])
    assert (awaiting["price_fen"], awaiting["subsidy_fen"]) == (300_000 * YUAN, 90_000 * YUAN)
    assert awaiting["product_name"] == order["product_name"] and awaiting["enterprise_name"]

    await w.post(order, "accept", p)
    await w.settle()
    accepted = dict(await w.published(order["id"]))["orders.order_accepted"]
    assert accepted["subsidy_reserved_fen"] == 90_000 * YUAN and accepted["ratio_bp"] == 3000

    total, subsidy, deposit = 300_000 * YUAN, 90_000 * YUAN, 50_000 * YUAN
    payable = total - subsidy
    await w.signed(order, total, subsidy, deposit)
    await w.emit(w.deducted_event(order, subsidy), order["id"])
    await w.settle()
    seen = await w.get(order)
    assert seen["status"] == "awaiting_deposit" and seen["status_label"] == "待支付"
    assert seen["actions"] == ["cancel", "pay", "view_contract"] and seen["voucher_state"] == "committed"
    assert seen["contract_total_fen"] == total and seen["payable_fen"] == payable

    # the deposit in two installments
    await w.paid(order, 20_000 * YUAN, 20_000 * YUAN, payable, deposit)
    await w.settle()
    assert (await w.get(order))["status"] == "awaiting_deposit"
    await w.paid(order, 30_000 * YUAN, deposit, payable, deposit)
    await w.settle()
    assert (await w.get(order))["status"] == "awaiting_service"

    started = await w.post(order, "start-service", p)
    assert started["status"] == "in_service" and started["status_label"] == "待完成"
    done = await w.post(order, "complete-service", p)
    assert done["status"] == "awaiting_balance" and done["actions"] == ["view_contract"]
    assert (await w.get(order))["actions"] == ["pay", "evaluate", "view_contract"]
    assert (done["current_step"], done["steps_done"]) == (4, [1, 2, 3, 5])  # the balance: 线上支付 again

    await w.paid(order, payable - deposit, payable, payable, deposit)
    await w.settle()
    seen = await w.get(order)
    assert (
        seen["status"] == "completed"
        and seen["status_label"] == "待评价"
        and seen["actions"] == ["evaluate", "view_contract"]
    )

    r = await w.api.post(
        f"/api/v1/orders/{order['id']}/evaluation",
        json={"rating": 5, "content": "服务专业"},
        headers=e.headers,
    )
    assert r.status_code == 201 and r.json()["rating_label"] == "非常满意"
    await w.emit(w.settlement_event(order, subsidy), order["id"])
    await w.settle()

    seen = await w.get(order)
    assert seen["status"] == "evaluated" and seen["status_label"] == "评价完成"
    assert seen["voucher_state"] == "settled" and seen["settled_fen"] == subsidy
    assert seen["evaluation"]["rating"] == 5
    assert [s["label"] for s in seen["service_progress"] if s["done"]] == ["开始服务", "服务中", "服务完成"]
    labels = [s["label"] for s in seen["timeline"]]
    assert labels == [
        "申请服务",
        "服务券预留",
        "服务机构接单",
        "签订合同",
        "服务券抵扣",
        "支付成功",
        "支付成功",
        "开始服务",
        "服务中",
        "服务完成",
        "支付成功",
        "订单完成",
        "评价服务",
        "服务券兑付",
    ]
    assert all(s["at"] and s["actor"] for s in seen["timeline"])
    assert [s["actor_label"] for s in seen["timeline"][:3]] == ["企业", "系统", "服务机构"]
    assert await w.published_types(order["id"]) == [
        "orders.order_submitted",
        "orders.order_awaiting_acceptance",  # once quota reserved: the provider's to accept
        "orders.order_accepted",
        "orders.service_started",
        "orders.service_completed",
        "orders.order_completed",
        "orders.order_evaluated",
    ]
    completed = dict(await w.published(order["id"]))["orders.order_completed"]
    assert completed["subsidy_fen"] == subsidy and completed["total_fen"] == total
