"""What a screen needs in one answer (issue 15): an order row's ``actions`` carry the contract's
buttons (查看合同, 起草/修改合同, 同意, 退回修改, 签署) from orders' copy of the contract, kept
from contracts' events (each once, a stale one changing nothing), and every order carries
where it stands on the six-step bar (``current_step``, ``steps_done``). On both transports."""

from __future__ import annotations

from typing import Any

from common.events import ContractAgreed, ContractPartySigned, ContractReturned, ContractSubmitted

YUAN = 100
TOTAL = 300_000 * YUAN


def contract_id(order: dict[str, Any]) -> str:
    return f"contract-{order['id'][:8]}"


def facts(w: Any, order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order["id"],
        "order_no": order["order_no"],
        "contract_id": contract_id(order),
        "contract_version": 1,
        "enterprise_id": w.enterprise.org_id or "",
        "provider_id": w.provider.org_id or "",
        "product_name": order["product_name"],
    }


def submitted(w: Any, order: dict[str, Any]) -> ContractSubmitted:
    return ContractSubmitted(
        **facts(w, order),
        provider_name="广西示范科技服务有限公司",
        total_fen=TOTAL,
        subsidy_fen=0,
        payable_fen=TOTAL,
    )


def returned(w: Any, order: dict[str, Any]) -> ContractReturned:
    return ContractReturned(**facts(w, order), enterprise_name="广西示范制造有限公司", reason="定金过高")


def agreed(w: Any, order: dict[str, Any]) -> ContractAgreed:
    return ContractAgreed(**facts(w, order), total_fen=TOTAL)


def party_signed(order: dict[str, Any], party: str) -> ContractPartySigned:
    return ContractPartySigned(order_id=order["id"], contract_id=contract_id(order), party=party)


async def row(w: Any, order: dict[str, Any], who: Any) -> dict[str, Any]:
    """The order's row in the caller's list (我购买的服务 / 我的服务订单)."""
    path = "/api/v1/me/orders" if who is w.enterprise else "/api/v1/me/service-orders"
    r = await w.api.get(path, headers=who.headers)
    assert r.status_code == 200, r.text
    found = [o for o in r.json()["items"] if o["id"] == order["id"]]
    assert len(found) == 1
    return found[0]


async def actions(w: Any, order: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Both parties' actions on the order's row; the order page says the same."""
    mine, theirs = await row(w, order, w.enterprise), await row(w, order, w.provider)
    assert (await w.get(order, w.enterprise))["actions"] == mine["actions"]
    assert (await w.get(order, w.provider))["actions"] == theirs["actions"]
    return mine["actions"], theirs["actions"]


async def test_a_rows_actions_follow_the_contract_through_review_and_both_signatures(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.settle()
    # nothing announced yet: contracts drafts on the acceptance, the provider writes it
    assert await actions(w, order) == (["cancel"], ["edit_contract"])

    await w.emit(submitted(w, order), order["id"], twice=True)
    await w.settle()
    assert await actions(w, order) == (
        ["cancel", "view_contract", "agree_contract", "return_contract"],
        ["view_contract"],
    )

    await w.emit(returned(w, order), order["id"])
    await w.settle()
    assert await actions(w, order) == (["cancel", "view_contract"], ["view_contract", "edit_contract"])

    await w.emit(submitted(w, order), order["id"])
    await w.emit(agreed(w, order), order["id"])
    await w.settle()
    signing = ["view_contract", "sign_contract"]
    assert await actions(w, order) == (["cancel", *signing], signing)

    await w.emit(party_signed(order, "enterprise"), order["id"], twice=True)
    await w.settle()
    assert await actions(w, order) == (["cancel", "view_contract"], signing)

    await w.emit(party_signed(order, "provider"), order["id"])
    await w.signed(order, TOTAL, 0, 50_000 * YUAN)
    await w.settle()
    seen = await w.get(order, w.enterprise)
    assert seen["status"] == "awaiting_deposit"
    assert await actions(w, order) == (["cancel", "pay", "view_contract"], ["view_contract"])
    assert (seen["current_step"], seen["steps_done"]) == (4, [1, 2, 3])  # 线上支付


async def test_a_stale_contract_fact_changes_nothing_on_the_row(world) -> None:
    """The agreement delivered after the signing it preceded (an older fact on contracts'
    stream) does not bring 签署 back."""
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.settle()
    await w.emit(submitted(w, order), order["id"])
    late = agreed(w, order)
    agreed_seq = w.seqs[("contracts", order["id"])] + 1
    await w.signed(order, TOTAL, 0, 0, sequence=agreed_seq + 1)
    await w.settle()
    await w.emit(late, order["id"], sequence=agreed_seq)
    await w.settle()
    assert await actions(w, order) == (["view_contract"], ["start_service", "view_contract"])


async def test_a_cancel_being_decided_leaves_only_reading_the_contract_and_the_void_none(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    await w.post(order, "accept", w.provider)
    await w.emit(submitted(w, order), order["id"])
    await w.settle()
    await w.post(order, "cancel", w.enterprise, json={"reason": "项目取消"})
    assert await actions(w, order) == (["view_contract"], ["view_contract"])
    await w.voided(order)
    await w.settle()
    assert await actions(w, order) == ([], [])
    seen = await w.get(order)
    assert seen["status"] == "cancelled"
    assert (seen["current_step"], seen["steps_done"]) == (None, [1, 2])  # accepted, never signed


async def test_every_row_and_the_order_page_carry_the_step_of_the_six_step_bar(world) -> None:
    w = await world()
    order = await w.submit(use_voucher=False)
    assert (order["current_step"], order["steps_done"]) == (2, [1])  # 服务机构接单
    await w.post(order, "accept", w.provider)
    mine = await row(w, order, w.enterprise)
    assert (mine["current_step"], mine["steps_done"]) == (3, [1, 2])  # 签订合同
    staff = w.h.issuer.staff()
    listed = await w.api.get("/api/v1/admin/orders", headers=staff.headers)
    assert listed.status_code == 200, listed.text
    [theirs] = [o for o in listed.json()["items"] if o["id"] == order["id"]]
    assert (theirs["current_step"], theirs["actions"]) == (3, [])  # staff see the bar, act on nothing
