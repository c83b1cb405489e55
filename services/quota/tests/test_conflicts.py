"""Quota never acknowledges and forgets a money event it cannot apply (DESIGN.md
"Termination"): a payout announced for a deduction already given back, or a termination
announced for a deduction already settled, is kept as a conflict staff see (the audit log,
``voucher_money_conflicts`` and ``voucher-invariants``), and the ledger is left as it was."""

from __future__ import annotations

from sqlalchemy import text

from common.events import ContractTerminated, SettlementPaid
from quota.models import Reservation
from quota.testing import PROVIDER, Quota, journal_adds_up, signed, submitted


async def conflicts(quota: Quota) -> list[tuple[str, str, str]]:
    async with quota.h.db("quota").session() as s:
        rows = await s.execute(
            text(
                "SELECT action, target_id, actor_role FROM audit_log WHERE action LIKE 'conflict.%' ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]


def paid(order_id: str, amount: int) -> SettlementPaid:
    return SettlementPaid(
        order_id=order_id,
        settlement_id="s1",
        provider_id=PROVIDER,
        amount_fen=amount,
        payout_reference="PAY-1",
    )


def terminated(order_id: str) -> ContractTerminated:
    return ContractTerminated(
        order_id=order_id, contract_id="c", reason="纠纷", terminated_by="administrator"
    )


async def test_a_payout_for_a_reversed_deduction_is_a_conflict_staff_see(quota: Quota) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 5_000_000)
    event = submitted(str(ent.org_id))
    await quota.h.publish(event, aggregate_id=event.order_id, sequence=1)
    await quota.h.publish(
        signed(event.order_id, str(ent.org_id), 3000), aggregate_id=event.order_id, sequence=1
    )
    await quota.h.publish(terminated(event.order_id), aggregate_id=event.order_id, sequence=2)
    await quota.h.settle()
    assert (await quota.row(Reservation, event.order_id)).state == "reversed"
    doc = await quota.h.publish(paid(event.order_id, 3000), aggregate_id=event.order_id, sequence=1)
    await quota.h.redeliver(doc)
    await quota.h.settle()
    assert await conflicts(quota) == [("conflict.settlement_of_reversed_deduction", event.order_id, "system")]
    assert (await quota.row(Reservation, event.order_id)).state == "reversed"
    metrics = (await quota.h.client("quota").get("/metrics")).text
    assert 'voucher_money_conflicts{service="quota"} 1.0' in metrics
    v = await journal_adds_up(quota, voucher.id)
    assert (v.remaining_fen, v.used_fen, v.settled_fen) == (5_000_000, 0, 0)


async def test_a_termination_of_a_settled_deduction_is_refused_and_a_conflict_staff_see(quota: Quota) -> None:
    ent = await quota.certified()
    voucher = await quota.voucher(str(ent.org_id), 5_000_000)
    event = submitted(str(ent.org_id))
    await quota.h.publish(event, aggregate_id=event.order_id, sequence=1)
    await quota.h.publish(
        signed(event.order_id, str(ent.org_id), 3000), aggregate_id=event.order_id, sequence=1
    )
    await quota.h.publish(paid(event.order_id, 3000), aggregate_id=event.order_id, sequence=1)

    async def settled() -> bool:
        res = await quota.row(Reservation, event.order_id)
        return res is not None and res.state == "settled"

    await quota.h.eventually(settled, what="the settled deduction")
    await quota.h.publish(terminated(event.order_id), aggregate_id=event.order_id, sequence=2)
    await quota.h.settle()
    assert [d["payload"]["refused"] for d in await quota.published("quota.voucher_reversed")] == [True]
    assert await conflicts(quota) == [("conflict.termination_of_settled_deduction", event.order_id, "system")]
    v = await journal_adds_up(quota, voucher.id)
    assert (v.used_fen, v.settled_fen) == (3000, 3000)
