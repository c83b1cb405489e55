"""payments.domain.remittances' rules: the plan's arithmetic and remittances decided once."""

from __future__ import annotations

import pytest

from common.rules import Refusal
from payments.domain import remittances as rm


def plan(payable: int = 4000, deposit: int = 800, paid: int = 0, pending: int = 0) -> rm.Figures:
    return rm.Figures(payable, deposit, payable - deposit, paid, pending)


@pytest.mark.parametrize(
    ("paid", "pending", "outstanding", "room", "deposit_met", "fully_paid", "suggested"),
    [
        (0, 0, 4000, 4000, False, False, 800),  # the manual: 汇款金额 8 合同定金
        (0, 500, 4000, 3500, False, False, 300),  # part of the deposit already announced
        (500, 0, 3500, 3500, False, False, 300),  # first installment of the deposit confirmed
        (800, 0, 3200, 3200, True, False, 3200),  # deposit met: the balance is next
        (800, 3200, 3200, 0, True, False, 0),  # everything announced, nothing to suggest
        (4000, 0, 0, 0, True, True, 0),
    ],
)
def test_the_plan_figures_follow_from_paid_and_pending(
    paid: int, pending: int, outstanding: int, room: int, deposit_met: bool, fully_paid: bool, suggested: int
) -> None:
    f = plan(paid=paid, pending=pending)
    assert f.outstanding_fen == outstanding
    assert f.room_fen == room
    assert f.deposit_met is deposit_met
    assert f.fully_paid is fully_paid
    assert f.suggested_fen == suggested


@pytest.mark.parametrize(
    ("payable", "deposit", "stage"), [(4000, 800, "合同定金"), (4000, 0, "合同尾款"), (0, 0, None)]
)
def test_the_stage_is_the_deposit_until_it_is_met(payable: int, deposit: int, stage: str | None) -> None:
    assert plan(payable=payable, deposit=deposit).stage == stage


def test_a_plan_with_nothing_to_pay_is_closed_at_once_and_a_zero_deposit_is_met() -> None:
    zero = rm.new_plan(total_fen=1000, subsidy_fen=1000, payable_fen=0, deposit_fen=0, balance_fen=0)
    assert rm.state_after(zero) == rm.PlanState.CLOSED
    no_deposit = rm.new_plan(total_fen=1000, subsidy_fen=500, payable_fen=500, deposit_fen=0, balance_fen=500)
    assert no_deposit.deposit_met and rm.state_after(no_deposit) == rm.PlanState.OPEN


@pytest.mark.parametrize(
    "amounts",
    [
        {"total_fen": 1000, "subsidy_fen": 500, "payable_fen": 600, "deposit_fen": 100, "balance_fen": 500},
        {"total_fen": 1000, "subsidy_fen": 500, "payable_fen": 500, "deposit_fen": 100, "balance_fen": 300},
        {"total_fen": 1000, "subsidy_fen": -1, "payable_fen": 1001, "deposit_fen": 1, "balance_fen": 1000},
    ],
)
def test_contract_figures_that_do_not_add_up_make_no_plan(amounts: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        rm.new_plan(**amounts)


@pytest.mark.parametrize(
    ("paid", "pending", "amount", "code"),
    [
        (0, 0, 0, "amount_not_positive"),
        (0, 0, -5, "amount_not_positive"),
        (0, 0, 4001, "remittance_exceeds_outstanding"),
        (800, 3000, 201, "remittance_exceeds_outstanding"),  # pending counts against the room
        (4000, 0, 1, "already_fully_paid"),
    ],
)
def test_a_remittance_beyond_what_is_owed_is_refused(paid: int, pending: int, amount: int, code: str) -> None:
    with pytest.raises(Refusal) as refused:
        rm.record(plan(paid=paid, pending=pending), "open", amount)
    assert refused.value.code == code


def test_installments_fill_the_plan_and_only_confirmations_count_as_paid() -> None:
    f = rm.record(plan(), "open", 400)
    f = rm.record(f, "open", 400)
    assert (f.paid_fen, f.pending_fen, f.deposit_met) == (0, 800, False)
    f = rm.decide(f, "open", "pending", 400, confirm=True)
    assert (f.paid_fen, f.pending_fen, f.deposit_met) == (400, 400, False)
    f = rm.decide(f, "open", "pending", 400, confirm=False)  # rejected: its room comes back
    assert (f.paid_fen, f.pending_fen, f.room_fen) == (400, 0, 3600)


@pytest.mark.parametrize("state", ["confirmed", "rejected"])
def test_a_remittance_is_decided_once(state: str) -> None:
    with pytest.raises(Refusal) as refused:
        rm.decide(plan(pending=400), "open", state, 400, confirm=True)
    assert refused.value.code == "remittance_not_pending"


def test_nothing_is_recorded_on_a_plan_closed_by_a_void() -> None:
    with pytest.raises(Refusal, match="plan_closed"):
        rm.record(plan(), "closed", 100)


def test_nothing_new_is_recorded_on_a_terminated_plan_but_a_pending_transfer_stays_decidable() -> None:
    with pytest.raises(Refusal, match="contract_terminated"):
        rm.record(plan(), "terminated", 100)
    after = rm.decide(plan(pending=100), "terminated", "pending", 100, confirm=True)
    assert (after.paid_fen, after.pending_fen) == (100, 0)
    after = rm.decide(plan(pending=100), "terminated", "pending", 100, confirm=False)
    assert (after.paid_fen, after.pending_fen) == (0, 0)
