"""The contract's rules: its state machine and its amounts. Pure functions, no I/O.

States (DESIGN.md, saga step 5)::

    drafting -> pending_review <-> returned          (provider edits, submits; enterprise returns)
    pending_review -> agreed                         (enterprise agrees: immutable from then)
    agreed -> signed                                 (once both parties have signed)
    drafting | pending_review | returned | agreed -> voided     (the order's cancellation)
    signed -> terminating                            (staff, or an enterprise cancel before payment,
                                                      ask payments: frozen until it answers)
    terminating -> terminated                        (payments accepted: it pays nothing out now)
    terminating -> signed                            (payments refused: the reason is kept)

Amounts, once and for all: the subsidy is fixed when the provider sets the total, as
``min(reserved, ratio × total, product max)`` (never more than quota reserved for the order);
``payable = total − subsidy`` is what the enterprise pays; ``deposit ≤ payable`` and
``balance = payable − deposit``. A stage whose amount is 0 is met at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.rules import Refusal


class State(StrEnum):
    DRAFTING = "drafting"
    PENDING_REVIEW = "pending_review"
    RETURNED = "returned"
    AGREED = "agreed"
    SIGNED = "signed"
    TERMINATING = "terminating"
    VOIDED = "voided"
    TERMINATED = "terminated"


class Action(StrEnum):
    EDIT = "edit"  # provider sets total, deposit, terms
    SUBMIT = "submit"  # provider sends it to the enterprise
    AGREE = "agree"  # enterprise
    RETURN = "return"  # enterprise, with a reason
    SIGN = "sign"  # either party (both -> signed)
    VOID = "void"  # the order's cancellation before signing
    REQUEST_TERMINATION = "request_termination"  # staff, or the enterprise before any payment
    TERMINATE = "terminate"  # payments accepted the request
    RESUME = "resume"  # payments refused the request: signed again


class Party(StrEnum):
    ENTERPRISE = "enterprise"
    PROVIDER = "provider"


STATE_LABELS: dict[State, str] = {
    State.DRAFTING: "待拟定",
    State.PENDING_REVIEW: "待确认",
    State.RETURNED: "退回修改",
    State.AGREED: "待签署",
    State.SIGNED: "已签署",
    State.TERMINATING: "终止审核中",
    State.VOIDED: "已作废",
    State.TERMINATED: "已终止",
}

# Who may take each action (None: the platform itself, on an event).
ACTOR: dict[Action, Party | None] = {
    Action.EDIT: Party.PROVIDER,
    Action.SUBMIT: Party.PROVIDER,
    Action.AGREE: Party.ENTERPRISE,
    Action.RETURN: Party.ENTERPRISE,
    Action.SIGN: None,  # either party
    Action.VOID: None,
    Action.REQUEST_TERMINATION: None,
    Action.TERMINATE: None,
    Action.RESUME: None,
}

UNSIGNED = frozenset({State.DRAFTING, State.PENDING_REVIEW, State.RETURNED, State.AGREED})

# (from state, action) -> to state. A signature moves agreed -> agreed until both signed
# (see :func:`after_signature`).
TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.DRAFTING, Action.EDIT): State.DRAFTING,
    (State.RETURNED, Action.EDIT): State.RETURNED,
    (State.DRAFTING, Action.SUBMIT): State.PENDING_REVIEW,
    (State.RETURNED, Action.SUBMIT): State.PENDING_REVIEW,
    (State.PENDING_REVIEW, Action.AGREE): State.AGREED,
    (State.PENDING_REVIEW, Action.RETURN): State.RETURNED,
    (State.AGREED, Action.SIGN): State.AGREED,
    **{(s, Action.VOID): State.VOIDED for s in UNSIGNED},
    (State.SIGNED, Action.REQUEST_TERMINATION): State.TERMINATING,
    (State.TERMINATING, Action.TERMINATE): State.TERMINATED,
    (State.TERMINATING, Action.RESUME): State.SIGNED,
}


def transition(state: State | str, action: Action) -> State:
    """The state after ``action``; raises ``Refusal("contract_state", state=, action=)`` when
    the action is not allowed in the current state (a 409 naming that state)."""
    current = State(state)
    to = TRANSITIONS.get((current, action))
    if to is None:
        raise Refusal("contract_state", state=current, action=action)
    return to


def after_signature(signed_by: set[Party] | frozenset[Party]) -> State:
    """Agreed until both parties have signed, then signed."""
    return State.SIGNED if signed_by >= {Party.ENTERPRISE, Party.PROVIDER} else State.AGREED


# --- who the caller is to the contract, and what it may do now ---------------------------------


def party_of(org_id: str | None, *, enterprise_id: str, provider_id: str) -> Party | None:
    """The side of the contract the caller's organisation is on (None: neither, e.g. staff)."""
    if org_id and org_id == enterprise_id:
        return Party.ENTERPRISE
    if org_id and org_id == provider_id:
        return Party.PROVIDER
    return None


def actions_for(
    state: State | str, party: Party | None, signed: set[Party] | frozenset[Party], *, terms_set: bool
) -> list[str]:
    """What ``party`` may do to the contract now (its ``actions``, which clients offer):
    the provider edits while drafting or returned and submits once the terms are set, the
    enterprise agrees or returns what is pending review, and each party signs an agreed
    contract it has not signed yet."""
    current = State(state)
    acts: list[str] = []
    if party is Party.PROVIDER and current in (State.DRAFTING, State.RETURNED):
        acts.append("edit")
        if terms_set:
            acts.append("submit")
    if party is Party.ENTERPRISE and current is State.PENDING_REVIEW:
        acts += ["agree", "return"]
    if party is not None and current is State.AGREED and party not in signed:
        acts.append("sign")
    return acts


# --- amounts -----------------------------------------------------------------------------------

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class Amounts:
    total_fen: int
    subsidy_fen: int
    payable_fen: int
    deposit_fen: int
    balance_fen: int

    @property
    def deposit_met_at_signing(self) -> bool:
        """A zero deposit (or nothing to pay at all) is met the moment the contract is signed."""
        return self.deposit_fen == 0

    @property
    def fully_paid_at_signing(self) -> bool:
        return self.payable_fen == 0


def contract_subsidy(total_fen: int, *, reserved_fen: int, ratio_bp: int, max_subsidy_fen: int) -> int:
    """min(reserved, ratio × total, product max), rounded down to the fen (never above what
    quota reserved, never negative)."""
    by_ratio = total_fen * ratio_bp // BASIS_POINTS
    return max(0, min(reserved_fen, by_ratio, max_subsidy_fen))


def compute_amounts(
    total_fen: int, deposit_fen: int, *, reserved_fen: int, ratio_bp: int, max_subsidy_fen: int
) -> Amounts:
    """The contract's amounts; raises ``Refusal`` ``total_invalid``, ``deposit_invalid`` or
    ``deposit_above_payable`` for amounts that cannot make a contract."""
    if total_fen < 0:
        raise Refusal("total_invalid")
    if deposit_fen < 0:
        raise Refusal("deposit_invalid")
    subsidy = contract_subsidy(
        total_fen, reserved_fen=reserved_fen, ratio_bp=ratio_bp, max_subsidy_fen=max_subsidy_fen
    )
    payable = total_fen - subsidy
    if deposit_fen > payable:
        raise Refusal("deposit_above_payable")
    return Amounts(total_fen, subsidy, payable, deposit_fen, payable - deposit_fen)


# --- what a cancellation request does ------------------------------------------------------------


class CancelOutcome(StrEnum):
    VOID = "void"  # not signed: void it
    TERMINATE = "terminate"  # signed, nothing known paid, the enterprise asked: ask payments
    REFUSE = "refuse"  # signed (and paid, or not asked to terminate): the signing stands
    NOTHING = "nothing"  # already void or terminated


@dataclass(frozen=True)
class CancelAnswer:
    outcome: CancelOutcome
    code: str = ""  # why a refusal: the stable code orders shows (contracts.cancellation_refused)
    reason: str = ""


REFUSALS: dict[str, str] = {
    "already_signed": "合同已签署，订单不能取消",
    "order_already_paid": "企业已支付款项，订单不能取消，如有争议请联系平台",
    "termination_pending": "合同终止处理中，请等待处理结果",
}


def _refuse(code: str) -> CancelAnswer:
    return CancelAnswer(CancelOutcome.REFUSE, code, REFUSALS[code])


def on_cancellation_request(
    state: State | str | None, *, terminate_if_signed: bool, paid: bool
) -> CancelAnswer:
    """``state`` None: no contract yet (the request is still answered with a void). ``paid``:
    what contracts already knows was paid (payments decides what it does not know yet)."""
    if state is None:
        return CancelAnswer(CancelOutcome.VOID)
    current = State(state)
    if current in UNSIGNED:
        return CancelAnswer(CancelOutcome.VOID)
    if current is State.SIGNED:
        if not terminate_if_signed:
            return _refuse("already_signed")
        return _refuse("order_already_paid") if paid else CancelAnswer(CancelOutcome.TERMINATE)
    if current is State.TERMINATING:
        return _refuse("termination_pending")
    return CancelAnswer(CancelOutcome.NOTHING)
