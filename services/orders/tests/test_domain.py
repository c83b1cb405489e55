"""The order's state machine, exhaustively: every (state, step) pair either moves as
DESIGN.md's saga table says or is refused naming the current state."""

from __future__ import annotations

import itertools

import pytest

from common.rules import Refusal
from orders.domain import (
    CONFLICT,
    EARLY,
    EVENT_STEPS,
    ORDER_STEPS,
    PEOPLE_STEPS,
    STATUS_LABELS,
    TABS,
    VOUCHER_HELD,
    Actor,
    ContractCopy,
    ContractState,
    Effect,
    Facts,
    Move,
    Status,
    Step,
    VoucherFact,
    VoucherState,
    actions,
    contract_actions,
    decide,
    progress,
    sees_contacts,
    tab_of,
    termination_refusal,
    voucher_early,
    voucher_next,
)

S, E = Status, Effect
OWNER = {step: actor for actor, steps in PEOPLE_STEPS.items() for step in steps} | {
    step: Actor.SYSTEM for step in EVENT_STEPS
}

# (state, step) -> new state, with the default facts (nothing paid, not evaluated, no request).
# Every pair NOT listed here must be refused.
MOVES: dict[tuple[Status, Step], Status] = {
    (S.PENDING_VOUCHER, Step.CANCEL): S.CANCELLED,
    (S.AWAITING_ACCEPTANCE, Step.CANCEL): S.CANCELLED,
    (S.AWAITING_CONTRACT, Step.CANCEL): S.AWAITING_CONTRACT,  # asks contracts to void
    (S.AWAITING_DEPOSIT, Step.CANCEL): S.AWAITING_DEPOSIT,  # asks contracts to terminate
    (S.AWAITING_DEPOSIT, Step.PAY): S.AWAITING_DEPOSIT,
    (S.AWAITING_BALANCE, Step.PAY): S.AWAITING_BALANCE,
    (S.AWAITING_BALANCE, Step.EVALUATE): S.AWAITING_BALANCE,
    (S.COMPLETED, Step.EVALUATE): S.EVALUATED,
    (S.AWAITING_ACCEPTANCE, Step.ACCEPT): S.AWAITING_CONTRACT,
    (S.AWAITING_ACCEPTANCE, Step.REJECT): S.CANCELLED,
    (S.AWAITING_SERVICE, Step.START_SERVICE): S.IN_SERVICE,
    (S.IN_SERVICE, Step.COMPLETE_SERVICE): S.AWAITING_BALANCE,
    (S.PENDING_VOUCHER, Step.VOUCHER_RESERVED): S.AWAITING_ACCEPTANCE,
    (S.PENDING_VOUCHER, Step.VOUCHER_REJECTED): S.CANCELLED,
    (S.AWAITING_CONTRACT, Step.CONTRACT_SIGNED): S.AWAITING_SERVICE,  # payable 0 by default
    (S.AWAITING_CONTRACT, Step.CONTRACT_VOIDED): S.CANCELLED,
    **{
        (s, Step.CONTRACT_TERMINATED): S.TERMINATED
        for s in (
            S.AWAITING_DEPOSIT,
            S.AWAITING_SERVICE,
            S.IN_SERVICE,
            S.AWAITING_BALANCE,
            S.COMPLETED,
            S.EVALUATED,
        )
    },
    **{
        (s, Step.PAYMENT_RECEIVED): s
        for s in (
            S.AWAITING_DEPOSIT,
            S.AWAITING_SERVICE,
            S.IN_SERVICE,
            S.AWAITING_BALANCE,
            S.COMPLETED,
            S.EVALUATED,
            S.CANCELLED,
            S.TERMINATED,
        )
    },
    (S.PENDING_VOUCHER, Step.ACCEPTANCE_TIMEOUT): S.CANCELLED,
    (S.AWAITING_ACCEPTANCE, Step.ACCEPTANCE_TIMEOUT): S.CANCELLED,
    (S.AWAITING_CONTRACT, Step.SIGNING_TIMEOUT): S.AWAITING_CONTRACT,  # asks contracts to void
}
# Events that come before the fact they follow: retried later, never dropped.
COME_EARLY = {
    (s, step)
    for s in (S.PENDING_VOUCHER, S.AWAITING_ACCEPTANCE)
    for step in (Step.CONTRACT_SIGNED, Step.CONTRACT_VOIDED, Step.CONTRACT_TERMINATED, Step.PAYMENT_RECEIVED)
} | {(S.AWAITING_CONTRACT, Step.CONTRACT_TERMINATED), (S.AWAITING_CONTRACT, Step.PAYMENT_RECEIVED)}
# Refusals with the default facts that say more than "not in this state".
CODES: dict[tuple[Status, Step], str] = {(S.EVALUATED, Step.EVALUATE): "already_evaluated"}


@pytest.mark.parametrize(("state", "step"), list(itertools.product(Status, Step)))
def test_every_state_and_step_moves_as_the_table_says_or_is_refused_naming_the_state(state, step) -> None:
    outcome = decide(state, step, OWNER[step])
    if (state, step) in MOVES:
        assert isinstance(outcome, Move), outcome
        assert outcome.to is MOVES[(state, step)]
    else:
        code = EARLY if (state, step) in COME_EARLY else CODES.get((state, step), CONFLICT)
        assert outcome == Refusal(code, state=state, step=step)


@pytest.mark.parametrize(
    ("state", "step", "actor"),
    [
        (state, step, actor)
        for state, step, actor in itertools.product(Status, Step, Actor)
        if actor is not OWNER[step]
    ],
)
def test_a_step_taken_by_the_wrong_party_is_refused_whatever_the_state(state, step, actor) -> None:
    assert decide(state, step, actor) == Refusal("forbidden_actor", state=state, step=step)


@pytest.mark.parametrize(
    ("state", "step", "facts", "expected"),
    [
        # a cancellation already asked of contracts is not asked twice
        (
            S.AWAITING_CONTRACT,
            Step.CANCEL,
            Facts(cancel_requested_in=S.AWAITING_CONTRACT),
            "cancellation_pending",
        ),
        (
            S.AWAITING_DEPOSIT,
            Step.CANCEL,
            Facts(cancel_requested_in=S.AWAITING_DEPOSIT),
            "cancellation_pending",
        ),
        (
            S.AWAITING_CONTRACT,
            Step.SIGNING_TIMEOUT,
            Facts(cancel_requested_in=S.AWAITING_CONTRACT),
            "order_state_conflict",
        ),
        # 待支付 with something paid is no longer cancellable
        (S.AWAITING_DEPOSIT, Step.CANCEL, Facts(paid_fen=1), "order_already_paid"),
        # once evaluated, never again
        (S.AWAITING_BALANCE, Step.EVALUATE, Facts(evaluated=True), "already_evaluated"),
        (S.EVALUATED, Step.EVALUATE, Facts(evaluated=True), "already_evaluated"),
        # nothing left to pay
        (S.AWAITING_BALANCE, Step.PAY, Facts(fully_paid=True), "order_state_conflict"),
    ],
)
def test_the_facts_refuse_what_the_state_alone_would_allow(state, step, facts, expected) -> None:
    assert decide(state, step, OWNER[step], facts) == Refusal(expected, state=state, step=step)


@pytest.mark.parametrize(
    ("state", "step", "facts", "to", "effects"),
    [
        (
            S.AWAITING_CONTRACT,
            Step.CONTRACT_SIGNED,
            Facts(payable_fen=21_000_000, deposit_fen=5_000_000),
            S.AWAITING_DEPOSIT,
            {E.STOP_TIMERS},
        ),
        # a stage whose amount is 0 is met at once
        (
            S.AWAITING_CONTRACT,
            Step.CONTRACT_SIGNED,
            Facts(payable_fen=21_000_000, deposit_fen=0),
            S.AWAITING_SERVICE,
            {E.STOP_TIMERS},
        ),
        (
            S.AWAITING_CONTRACT,
            Step.CONTRACT_SIGNED,
            Facts(payable_fen=0, deposit_fen=0),
            S.AWAITING_SERVICE,
            {E.STOP_TIMERS},
        ),
        (S.AWAITING_DEPOSIT, Step.PAYMENT_RECEIVED, Facts(deposit_met=True), S.AWAITING_SERVICE, set()),
        (S.AWAITING_DEPOSIT, Step.PAYMENT_RECEIVED, Facts(paid_fen=100), S.AWAITING_DEPOSIT, set()),
        (
            S.AWAITING_BALANCE,
            Step.PAYMENT_RECEIVED,
            Facts(fully_paid=True),
            S.COMPLETED,
            {E.PUBLISH_COMPLETED},
        ),
        (
            S.AWAITING_BALANCE,
            Step.PAYMENT_RECEIVED,
            Facts(fully_paid=True, evaluated=True),
            S.EVALUATED,
            {E.PUBLISH_COMPLETED},
        ),
        (
            S.IN_SERVICE,
            Step.COMPLETE_SERVICE,
            Facts(fully_paid=True),
            S.COMPLETED,
            {E.PUBLISH_SERVICE_COMPLETED, E.PUBLISH_COMPLETED},
        ),
        (S.IN_SERVICE, Step.COMPLETE_SERVICE, Facts(), S.AWAITING_BALANCE, {E.PUBLISH_SERVICE_COMPLETED}),
        (S.AWAITING_CONTRACT, Step.CANCEL, Facts(), S.AWAITING_CONTRACT, {E.REQUEST_VOID}),
        (S.AWAITING_DEPOSIT, Step.CANCEL, Facts(), S.AWAITING_DEPOSIT, {E.REQUEST_TERMINATION}),
        (S.AWAITING_ACCEPTANCE, Step.CANCEL, Facts(), S.CANCELLED, {E.PUBLISH_CANCELLED, E.STOP_TIMERS}),
        (
            S.AWAITING_ACCEPTANCE,
            Step.ACCEPT,
            Facts(),
            S.AWAITING_CONTRACT,
            {E.PUBLISH_ACCEPTED, E.START_SIGNING_TIMER},
        ),
        (
            S.PENDING_VOUCHER,
            Step.VOUCHER_REJECTED,
            Facts(),
            S.CANCELLED,
            {E.PUBLISH_CANCELLED, E.STOP_TIMERS},
        ),
        (
            S.AWAITING_CONTRACT,
            Step.CONTRACT_VOIDED,
            Facts(),
            S.CANCELLED,
            {E.PUBLISH_CANCELLED, E.STOP_TIMERS},
        ),
        (S.AWAITING_ACCEPTANCE, Step.ACCEPTANCE_TIMEOUT, Facts(), S.CANCELLED, {E.PUBLISH_CANCELLED}),
        (S.AWAITING_CONTRACT, Step.SIGNING_TIMEOUT, Facts(), S.AWAITING_CONTRACT, {E.REQUEST_VOID}),
        (S.COMPLETED, Step.EVALUATE, Facts(), S.EVALUATED, {E.RECORD_EVALUATION}),
        (S.AWAITING_SERVICE, Step.START_SERVICE, Facts(), S.IN_SERVICE, {E.PUBLISH_SERVICE_STARTED}),
    ],
)
def test_each_move_carries_the_effects_the_saga_needs(state, step, facts, to, effects) -> None:
    outcome = decide(state, step, OWNER[step], facts)
    assert isinstance(outcome, Move) and outcome.to is to and set(outcome.effects) == effects


@pytest.mark.parametrize(
    ("state", "actor", "facts", "expected"),
    [
        (S.AWAITING_ACCEPTANCE, Actor.ENTERPRISE, Facts(), ["cancel"]),
        (S.AWAITING_ACCEPTANCE, Actor.PROVIDER, Facts(), ["accept", "reject"]),
        (S.PENDING_VOUCHER, Actor.PROVIDER, Facts(), []),
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, Facts(), ["cancel"]),
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, Facts(cancel_requested_in=S.AWAITING_CONTRACT), []),
        (S.AWAITING_DEPOSIT, Actor.ENTERPRISE, Facts(), ["cancel", "pay"]),  # 查看 取消订单 支付
        (S.AWAITING_DEPOSIT, Actor.ENTERPRISE, Facts(paid_fen=800), ["pay"]),
        (S.AWAITING_SERVICE, Actor.PROVIDER, Facts(), ["start_service"]),
        (S.IN_SERVICE, Actor.PROVIDER, Facts(), ["complete_service"]),
        (S.AWAITING_BALANCE, Actor.ENTERPRISE, Facts(), ["pay", "evaluate"]),
        (S.COMPLETED, Actor.ENTERPRISE, Facts(fully_paid=True), ["evaluate"]),  # 查看 评价
        (S.EVALUATED, Actor.ENTERPRISE, Facts(fully_paid=True, evaluated=True), []),
        (S.CANCELLED, Actor.ENTERPRISE, Facts(), []),
        (S.AWAITING_ACCEPTANCE, Actor.STAFF, Facts(), []),
    ],
)
def test_the_actions_offered_are_the_moves_the_caller_may_make_now(state, actor, facts, expected) -> None:
    assert actions(state, actor, facts) == expected


def test_every_status_has_one_tab_and_a_label_from_the_manual() -> None:
    assert [label for label, _ in TABS.values()] == [
        "待接单",
        "待签合同",
        "待支付",
        "待服务",
        "待完成",
        "已完成",
        "订单取消",
        "评价完成",
    ]
    assert sorted(s for _l, statuses in TABS.values() for s in statuses) == sorted(Status)
    assert STATUS_LABELS[S.COMPLETED] == "待评价" and tab_of(S.COMPLETED) == "completed"
    assert tab_of(S.TERMINATED) == "cancelled" and tab_of(S.PENDING_VOUCHER) == "awaiting_acceptance"


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        (Actor.ENTERPRISE, True),
        (Actor.PROVIDER, True),
        (Actor.STAFF, True),
        (Actor.SYSTEM, False),
        (None, False),
    ],
)
def test_the_parties_and_staff_see_the_contacts_and_nobody_else(viewer, sees) -> None:
    """双方接洽: a caller the order does not name (deps.viewer_of gives None) never does."""
    assert sees_contacts(viewer) is sees


# --- the contract's buttons on an order row (issue 15) -------------------------------------------

C = ContractState
SIGNED_BY_ENTERPRISE = ContractCopy(C.AGREED, enterprise_signed=True)


def with_contract(state: ContractState | None, **kw: object) -> Facts:
    return Facts(contract=ContractCopy(state), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "actor", "facts", "expected"),
    [
        # nothing announced yet while awaiting the contract: the provider drafts it (起草合同)
        (S.AWAITING_CONTRACT, Actor.PROVIDER, Facts(), ["edit_contract"]),
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, Facts(), []),
        (S.AWAITING_CONTRACT, Actor.PROVIDER, with_contract(C.DRAFTING), ["edit_contract"]),
        # submitted: the enterprise reads it, agrees (同意) or returns it (退回修改)
        (
            S.AWAITING_CONTRACT,
            Actor.ENTERPRISE,
            with_contract(C.PENDING_REVIEW),
            ["view_contract", "agree_contract", "return_contract"],
        ),
        (S.AWAITING_CONTRACT, Actor.PROVIDER, with_contract(C.PENDING_REVIEW), ["view_contract"]),
        (S.AWAITING_CONTRACT, Actor.PROVIDER, with_contract(C.RETURNED), ["view_contract", "edit_contract"]),
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, with_contract(C.RETURNED), ["view_contract"]),
        # agreed: each party signs once (签署)
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, with_contract(C.AGREED), ["view_contract", "sign_contract"]),
        (S.AWAITING_CONTRACT, Actor.PROVIDER, with_contract(C.AGREED), ["view_contract", "sign_contract"]),
        (S.AWAITING_CONTRACT, Actor.ENTERPRISE, Facts(contract=SIGNED_BY_ENTERPRISE), ["view_contract"]),
        (
            S.AWAITING_CONTRACT,
            Actor.PROVIDER,
            Facts(contract=SIGNED_BY_ENTERPRISE),
            ["view_contract", "sign_contract"],
        ),
        # a cancellation being decided: nothing but reading it
        (
            S.AWAITING_CONTRACT,
            Actor.ENTERPRISE,
            with_contract(C.PENDING_REVIEW, cancel_requested_in=S.AWAITING_CONTRACT),
            ["view_contract"],
        ),
        (S.AWAITING_CONTRACT, Actor.PROVIDER, Facts(cancel_requested_in=S.AWAITING_CONTRACT), []),
        # signed and after: 查看合同 only, for both; none once void; none for staff
        (S.AWAITING_DEPOSIT, Actor.ENTERPRISE, with_contract(C.SIGNED), ["view_contract"]),
        (S.EVALUATED, Actor.PROVIDER, with_contract(C.SIGNED), ["view_contract"]),
        (S.AWAITING_DEPOSIT, Actor.ENTERPRISE, with_contract(C.TERMINATING), ["view_contract"]),
        (S.TERMINATED, Actor.ENTERPRISE, with_contract(C.TERMINATED), ["view_contract"]),
        (S.CANCELLED, Actor.ENTERPRISE, with_contract(C.VOIDED), []),
        (S.AWAITING_ACCEPTANCE, Actor.PROVIDER, Facts(), []),
        (S.AWAITING_CONTRACT, Actor.STAFF, with_contract(C.AGREED), []),
    ],
)
def test_the_contracts_buttons_follow_its_state_and_who_has_signed(state, actor, facts, expected) -> None:
    assert contract_actions(state, actor, facts) == expected


def test_a_rows_actions_are_the_orders_steps_then_the_contracts() -> None:
    facts = with_contract(C.PENDING_REVIEW)
    assert actions(S.AWAITING_CONTRACT, Actor.ENTERPRISE, facts) == [
        "cancel",
        "view_contract",
        "agree_contract",
        "return_contract",
    ]
    signed = with_contract(C.SIGNED)
    assert actions(S.AWAITING_DEPOSIT, Actor.ENTERPRISE, signed) == ["cancel", "pay", "view_contract"]


# --- the six-step bar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "current", "done"),
    [
        (S.PENDING_VOUCHER, 2, (1,)),
        (S.AWAITING_ACCEPTANCE, 2, (1,)),  # 服务机构接单
        (S.AWAITING_CONTRACT, 3, (1, 2)),  # 签订合同
        (S.AWAITING_DEPOSIT, 4, (1, 2, 3)),  # 线上支付
        (S.AWAITING_SERVICE, 5, (1, 2, 3, 4)),  # 完成服务
        (S.IN_SERVICE, 5, (1, 2, 3, 4)),
        (S.AWAITING_BALANCE, 4, (1, 2, 3, 5)),  # the balance keeps 线上支付 open
        (S.COMPLETED, 6, (1, 2, 3, 4, 5)),  # 评价服务
        (S.EVALUATED, 6, (1, 2, 3, 4, 5, 6)),
    ],
)
def test_the_current_step_is_the_first_the_order_has_not_done(state, current, done) -> None:
    bar = progress(state)
    assert (bar.current, bar.done) == (current, done)
    assert ORDER_STEPS == ("申请服务", "服务机构接单", "签订合同", "线上支付", "完成服务", "评价服务")


@pytest.mark.parametrize(
    ("state", "accepted", "signed", "done"),
    [
        (S.CANCELLED, False, False, (1,)),
        (S.CANCELLED, True, False, (1, 2)),
        (S.TERMINATED, True, True, (1, 2, 3)),
    ],
)
def test_an_ended_order_keeps_the_steps_it_did_and_has_no_current_step(state, accepted, signed, done) -> None:
    bar = progress(state, accepted=accepted, signed=signed)
    assert (bar.current, bar.done) == (None, done)


# --- the voucher's state machine: quota's facts ---------------------------------------------

V, F = VoucherState, VoucherFact
VOUCHER_MOVES = {
    (V.PENDING, F.RESERVED): V.RESERVED,
    (V.PENDING, F.REJECTED): V.REJECTED,
    (V.RESERVED, F.DEDUCTED): V.COMMITTED,
    (V.RESERVED, F.RELEASED): V.RELEASED,
    (V.COMMITTED, F.REVERSED): V.REVERSED,
    (V.COMMITTED, F.SETTLED): V.SETTLED,
}
VOUCHER_EARLY = {
    (V.NONE, F.DEDUCTED),
    (V.PENDING, F.DEDUCTED),
    (V.NONE, F.RELEASED),
    (V.PENDING, F.RELEASED),
    (V.NONE, F.REVERSED),
    (V.PENDING, F.REVERSED),
    (V.RESERVED, F.REVERSED),
}


@pytest.mark.parametrize(("state", "fact"), list(itertools.product(VoucherState, VoucherFact)))
def test_each_of_quotas_facts_moves_the_voucher_once_waits_for_its_prerequisite_or_changes_nothing(
    state: VoucherState, fact: VoucherFact
) -> None:
    assert voucher_next(state, fact) == VOUCHER_MOVES.get((state, fact))
    assert voucher_early(state, fact) == ((state, fact) in VOUCHER_EARLY)
    # a fact that waits never moves the state, and a repeat of a fact changes nothing
    assert not (voucher_early(state, fact) and voucher_next(state, fact))
    if (moved := voucher_next(state, fact)) is not None:
        assert voucher_next(moved, fact) is None


def test_quota_holds_a_subsidy_while_reserved_or_deducted_only() -> None:
    assert {s for s in VoucherState if s in VOUCHER_HELD} == {V.RESERVED, V.COMMITTED}


@pytest.mark.parametrize(
    ("state", "by", "code"),
    [
        (Status.AWAITING_DEPOSIT, "enterprise", None),  # the enterprise's cancel before performance
        (Status.AWAITING_SERVICE, "provider", None),
        (Status.AWAITING_SERVICE, "enterprise", "cancel_not_allowed"),
        (Status.AWAITING_BALANCE, "provider", "service_completed"),
        (Status.COMPLETED, "enterprise", "service_completed"),
    ],
)
def test_orders_refuses_a_termination_with_a_refusal_in_the_manuals_words(state, by, code) -> None:  # type: ignore[no-untyped-def]
    refusal = termination_refusal(state, by)
    if code is None:
        assert refusal is None
    else:
        assert isinstance(refusal, Refusal) and refusal.code == code
        assert refusal.detail and ("服务已完成" in refusal.detail or "不能取消" in refusal.detail)
