"""Terminations end to end (DESIGN.md "Termination"), every service its own process behind
the gateway. Contracts asks, payments (which owns money paid out) decides: staff terminate a
signed contract with a confirmed deposit and a transfer still pending (the deduction reversed,
the deposit owed back, the pending transfer confirmed afterwards owed back too), an
enterprise cancels a signed order with nothing paid (a termination too), and a served or
settled contract cannot be terminated (the refusal's reason shown to staff). After each,
``voucher-invariants`` passes on the services' databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from common.testing.plugin import require_broker

from .conftest import Platform
from .journey import Journey, eventually, expect, platform_for_module

pytestmark = [pytest.mark.e2e, pytest.mark.broker, pytest.mark.timeout(600)]

VOUCHER = 5_000_000


@pytest_asyncio.fixture(scope="module")
async def platform(
    postgres_server: str,
    amqp_url_or_none: str | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Platform]:
    url = require_broker(amqp_url_or_none, request)
    async with platform_for_module(postgres_server, url, Path(tmp_path_factory.mktemp("platform"))) as p:
        yield p


@pytest_asyncio.fixture
async def j(platform: Platform) -> AsyncIterator[Journey]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield await Journey.start(platform, client)


async def test_staff_terminate_a_signed_contract_with_a_confirmed_deposit_and_the_deposit_is_refunded(
    j: Journey,
) -> None:
    enterprise, provider, order, contract = await j.signed_order(total_fen=7600, deposit_fen=1000)
    oid = order["id"]
    await j.paid(enterprise, provider, oid, 1000)
    await j.status(enterprise, oid, "awaiting_service")
    pending = await j.remit(enterprise, oid, 500)  # part of the balance, not verified yet

    refused = await j.post(f"/admin/contracts/{contract['id']}/terminate", j.finance, {"reason": "服务纠纷"})
    assert refused.status_code == 403, refused.text
    asked = expect(
        await j.post(f"/admin/contracts/{contract['id']}/terminate", j.admin, {"reason": "服务机构无法履约"}),
        202,
    )
    assert asked["state"] in ("terminating", "terminated"), asked
    ended = await j.contract(enterprise, oid, lambda c: c["state"] == "terminated")
    assert ended["terminate_reason"] == "服务机构无法履约"

    detail = await j.status(enterprise, oid, "terminated")
    assert detail["status_label"] == "订单取消"
    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["used_fen"] == 0, "the deduction reversed"
    )
    assert (voucher["reserved_fen"], voucher["remaining_fen"]) == (0, VOUCHER)

    async def due() -> httpx.Response:
        return await j.get("/admin/refunds", j.finance, state="due")

    refunds = await eventually(
        due, lambda r: any(i["order_id"] == oid for i in r.json()["items"]), "the deposit's refund due"
    )
    refund = next(i for i in refunds.json()["items"] if i["order_id"] == oid)
    assert refund["amount_fen"] == 1000 and refund["order_no"] == order["order_no"]
    # the money the enterprise says it sent does not vanish: the provider confirms it received
    # the pending 500 after the termination, and it is owed back as well
    confirmed = expect(await j.post(f"/remittances/{pending['id']}/confirm", provider))
    assert confirmed["state"] == "confirmed", confirmed
    refunds = await eventually(
        due,
        lambda r: sorted(i["amount_fen"] for i in r.json()["items"] if i["order_id"] == oid) == [500, 1000],
        "both refunds due",
    )
    marked = expect(
        await j.post(
            f"/admin/refunds/{refund['id']}/mark-refunded", j.finance, {"refund_reference": "TK20240001"}
        )
    )
    assert marked["state"] == "refunded" and marked["refund_reference"] == "TK20240001"
    again = await j.post(
        f"/admin/refunds/{refund['id']}/mark-refunded", j.finance, {"refund_reference": "TK2"}
    )
    assert again.status_code == 409, again.text
    blocked = await j.post(
        f"/orders/{oid}/remittances",
        enterprise,
        {"amount_fen": 100, "bank_reference": "X1", "payer_account": "6228480000000000001"},
        **{"Idempotency-Key": "after-termination-" + oid},
    )
    assert blocked.status_code in (404, 409), blocked.text

    await j.invariants_hold()


async def test_an_enterprise_cancelling_a_signed_order_with_nothing_paid_terminates_it(j: Journey) -> None:
    enterprise, _provider, order, contract = await j.signed_order(total_fen=7600, deposit_fen=1000)
    oid = order["id"]
    await j.status(enterprise, oid, "awaiting_deposit")
    await eventually(lambda: j.general_voucher(enterprise), lambda v: v["used_fen"] == 3800, "the deduction")

    expect(await j.post(f"/orders/{oid}/cancel", enterprise, {"reason": "项目取消"}))
    await j.status(enterprise, oid, "terminated")
    ended = await j.contract(enterprise, oid, lambda c: c["state"] == "terminated")
    assert ended["id"] == contract["id"]
    voucher = await eventually(
        lambda: j.general_voucher(enterprise), lambda v: v["used_fen"] == 0, "the deduction reversed"
    )
    assert voucher["remaining_fen"] == VOUCHER

    await j.invariants_hold()


async def test_a_settled_contract_cannot_be_terminated_and_nothing_changes(j: Journey) -> None:
    enterprise, _provider, order, settlement = await j.settled_order()
    oid = order["id"]

    refused = await j.post(
        f"/admin/contracts/{settlement['contract_id']}/terminate", j.admin, {"reason": "事后发现纠纷"}
    )
    # refused at once when contracts already knows of the payout, else by payments a moment later
    assert refused.status_code in (409, 202), refused.text
    if refused.status_code == 409:
        assert refused.json()["code"] == "settlement_paid" and refused.json()["detail"]
        contract = await j.contract(enterprise, oid)
    else:
        contract = await j.contract(enterprise, oid, lambda c: c["state"] == "signed")
        assert contract["termination_refused_reason"], contract
    assert contract["state"] == "signed"
    assert (await j.status(enterprise, oid, "evaluated"))["settled_fen"] == 3800
    voucher = await j.general_voucher(enterprise)
    assert (voucher["used_fen"], voucher["settled_fen"]) == (3800, 3800)

    await j.invariants_hold()


async def test_a_served_order_cannot_be_terminated_and_staff_see_why(j: Journey) -> None:
    enterprise, provider, order, contract = await j.signed_order(total_fen=7600, deposit_fen=0)
    oid = order["id"]
    await j.status(provider, oid, "awaiting_service")
    expect(await j.post(f"/orders/{oid}/start-service", provider))
    expect(await j.post(f"/orders/{oid}/complete-service", provider))
    await j.status(enterprise, oid, "awaiting_balance")

    asked = expect(
        await j.post(f"/admin/contracts/{contract['id']}/terminate", j.admin, {"reason": "服务质量纠纷"}), 202
    )
    assert asked["state"] == "terminating", asked
    back = await j.contract(enterprise, oid, lambda c: c["state"] == "signed")
    assert "服务已完成" in back["termination_refused_reason"], back
    detail = await j.status(enterprise, oid, "awaiting_balance")
    assert detail["termination_pending"] is False and "pay" in detail["actions"]
    assert any(s["label"] == "合同终止未获同意" for s in detail["timeline"]), detail["timeline"]

    await j.invariants_hold()
