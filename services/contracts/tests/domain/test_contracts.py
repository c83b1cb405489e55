"""contracts.domain.contracts: the contract's state machine, amounts and offered actions,
exhaustively (pure, no I/O)."""

from __future__ import annotations

import itertools

import pytest

from common.rules import Refusal
from contracts.domain.contracts import (
    ACTOR,
    TRANSITIONS,
    Action,
    CancelOutcome,
    Party,
    State,
    actions_for,
    after_signature,
    compute_amounts,
    contract_subsidy,
    on_cancellation_request,
    party_of,
    transition,
)

ALLOWED = {
    (State.DRAFTING, Action.EDIT): State.DRAFTING,
    (State.RETURNED, Action.EDIT): State.RETURNED,
    (State.DRAFTING, Action.SUBMIT): State.PENDING_REVIEW,
    (State.RETURNED, Action.SUBMIT): State.PENDING_REVIEW,
    (State.PENDING_REVIEW, Action.AGREE): State.AGREED,
    (State.PENDING_REVIEW, Action.RETURN): State.RETURNED,
    (State.AGREED, Action.SIGN): State.AGREED,
    (State.DRAFTING, Action.VOID): State.VOIDED,
    (State.PENDING_REVIEW, Action.VOID): State.VOIDED,
    (State.RETURNED, Action.VOID): State.VOIDED,
    (State.AGREED, Action.VOID): State.VOIDED,
    (State.SIGNED, Action.REQUEST_TERMINATION): State.TERMINATING,
    (State.TERMINATING, Action.TERMINATE): State.TERMINATED,
    (State.TERMINATING, Action.RESUME): State.SIGNED,
}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_state_and_action_either_moves_as_the_table_says_or_is_refused_naming_the_state(
    state: State, action: Action
) -> None:
    if (state, action) in ALLOWED:
        assert transition(state, action) is ALLOWED[(state, action)]
    else:
        with pytest.raises(Refusal) as err:
            transition(state, action)
        assert err.value == Refusal("contract_state", state=state, action=action)


def test_the_table_is_exactly_the_documented_one() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize(
    ("signed_by", "state"),
    [
        (set(), State.AGREED),
        ({Party.ENTERPRISE}, State.AGREED),
        ({Party.PROVIDER}, State.AGREED),
        ({Party.ENTERPRISE, Party.PROVIDER}, State.SIGNED),
    ],
)
def test_a_contract_is_signed_only_once_both_parties_signed(signed_by: set[Party], state: State) -> None:
    assert after_signature(signed_by) is state


@pytest.mark.parametrize(
    ("total", "reserved", "ratio_bp", "product_max", "subsidy"),
    [
        (30_000_000, 9_000_000, 5000, 20_000_000, 9_000_000),  # the manual: 300,000 元, 90,000 voucher
        (7_600, 100_000, 5000, 100_000, 3_800),  # 76 元 -> 券后价 38 元
        (10_000_000, 9_000_000, 5000, 2_000_000, 2_000_000),  # the product's max
        (1_000_000, 9_000_000, 5000, 9_000_000, 500_000),  # the ratio of a smaller total
        (101, 1_000, 5000, 1_000, 50),  # rounded down to the fen
        (5_000_000, 0, 5000, 1_000_000, 0),  # no voucher
        (0, 1_000, 5000, 1_000, 0),
    ],
)
def test_the_subsidy_is_the_least_of_reservation_ratio_and_product_max(
    total: int, reserved: int, ratio_bp: int, product_max: int, subsidy: int
) -> None:
    assert (
        contract_subsidy(total, reserved_fen=reserved, ratio_bp=ratio_bp, max_subsidy_fen=product_max)
        == subsidy
    )


@pytest.mark.parametrize(
    ("total", "deposit", "payable", "balance"),
    [
        (30_000_000, 6_000_000, 21_000_000, 15_000_000),
        (30_000_000, 21_000_000, 21_000_000, 0),  # the whole payable as deposit
        (30_000_000, 0, 21_000_000, 21_000_000),  # no deposit: met at once
    ],
)
def test_payable_is_total_minus_subsidy_and_balance_is_payable_minus_deposit(
    total: int, deposit: int, payable: int, balance: int
) -> None:
    a = compute_amounts(total, deposit, reserved_fen=9_000_000, ratio_bp=5000, max_subsidy_fen=9_000_000)
    assert (a.total_fen, a.subsidy_fen, a.payable_fen, a.deposit_fen, a.balance_fen) == (
        total,
        9_000_000,
        payable,
        deposit,
        balance,
    )
    assert a.deposit_met_at_signing is (deposit == 0)


def test_a_contract_fully_covered_by_the_voucher_has_nothing_to_pay() -> None:
    a = compute_amounts(1_000_000, 0, reserved_fen=1_000_000, ratio_bp=10_000, max_subsidy_fen=1_000_000)
    assert a.payable_fen == 0 and a.fully_paid_at_signing and a.deposit_met_at_signing


@pytest.mark.parametrize(
    ("total", "deposit", "code"),
    [
        (30_000_000, 21_000_001, "deposit_above_payable"),
        (-1, 0, "total_invalid"),
        (100, -1, "deposit_invalid"),
    ],
)
def test_amounts_that_cannot_make_a_contract_are_refused_with_a_stable_code(
    total: int, deposit: int, code: str
) -> None:
    with pytest.raises(Refusal) as err:
        compute_amounts(total, deposit, reserved_fen=9_000_000, ratio_bp=5000, max_subsidy_fen=9_000_000)
    assert err.value == Refusal(code)


@pytest.mark.parametrize(
    ("state", "terminate_if_signed", "paid", "outcome", "code"),
    [
        (None, False, False, CancelOutcome.VOID, ""),
        *[
            (s, t, False, CancelOutcome.VOID, "")
            for s in ("drafting", "pending_review", "returned", "agreed")
            for t in (False, True)
        ],
        ("signed", False, False, CancelOutcome.REFUSE, "already_signed"),
        ("signed", True, False, CancelOutcome.TERMINATE, ""),
        ("signed", True, True, CancelOutcome.REFUSE, "order_already_paid"),
        ("terminating", True, False, CancelOutcome.REFUSE, "termination_pending"),
        ("terminating", False, False, CancelOutcome.REFUSE, "termination_pending"),
        ("voided", False, False, CancelOutcome.NOTHING, ""),
        ("terminated", True, False, CancelOutcome.NOTHING, ""),
    ],
)
def test_a_cancellation_request_voids_what_is_unsigned_asks_payments_to_terminate_a_signed_unpaid_one_and_refuses_with_a_reason(
    state: str | None, terminate_if_signed: bool, paid: bool, outcome: CancelOutcome, code: str
) -> None:
    answer = on_cancellation_request(state, terminate_if_signed=terminate_if_signed, paid=paid)
    assert (answer.outcome, answer.code) == (outcome, code)
    assert bool(answer.reason) is (outcome is CancelOutcome.REFUSE)


# --- who the caller is, and what it is offered ---------------------------------------------------


@pytest.mark.parametrize(
    ("org_id", "party"),
    [("ent", Party.ENTERPRISE), ("prov", Party.PROVIDER), ("other", None), (None, None), ("", None)],
)
def test_the_caller_is_the_party_its_organisation_is_and_staff_or_another_organisation_is_none(
    org_id: str | None, party: Party | None
) -> None:
    assert party_of(org_id, enterprise_id="ent", provider_id="prov") is party


E, P = Party.ENTERPRISE, Party.PROVIDER


@pytest.mark.parametrize(
    ("state", "party", "signed", "terms_set", "actions"),
    [
        (State.DRAFTING, P, set(), False, ["edit"]),
        (State.DRAFTING, P, set(), True, ["edit", "submit"]),
        (State.RETURNED, P, set(), True, ["edit", "submit"]),
        (State.DRAFTING, E, set(), True, []),
        (State.PENDING_REVIEW, E, set(), True, ["agree", "return"]),
        (State.PENDING_REVIEW, P, set(), True, []),
        (State.AGREED, E, set(), True, ["sign"]),
        (State.AGREED, P, {E}, True, ["sign"]),
        (State.AGREED, E, {E}, True, []),
        (State.AGREED, None, set(), True, []),
        (State.SIGNED, E, {E, P}, True, []),
        (State.TERMINATING, P, {E, P}, True, []),
        (State.VOIDED, P, set(), True, []),
    ],
)
def test_each_party_is_offered_its_own_next_steps(
    state: State, party: Party | None, signed: set[Party], terms_set: bool, actions: list[str]
) -> None:
    assert actions_for(state, party, signed, terms_set=terms_set) == actions


@pytest.mark.parametrize(("state", "party"), list(itertools.product(State, [E, P, None])))
def test_every_action_offered_is_one_the_state_machine_allows_that_party(
    state: State, party: Party | None
) -> None:
    for signed in (set(), {E}, {P}):
        for terms_set in (False, True):
            for name in actions_for(state, party, signed, terms_set=terms_set):
                action = Action(name)
                transition(state, action)  # not refused
                assert ACTOR[action] in (party, None)
