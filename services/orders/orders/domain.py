"""The order's state machine and labels: pure rules, no I/O, no HTTP.

One function decides every move, :func:`decide` (state, step, actor, facts) -> a :class:`Move`
(the new state and the effects the service must carry out: events, timers) or a
``common.rules.Refusal`` naming the current state and the step. A *step* is what a person
does (``cancel``, ``accept``...), what another service announced (``voucher_reserved``,
``contract_signed``...) or what a timer found (``acceptance_timeout``...). The routes, the
event handlers and the timers all go through it, so the table below is the one place the
saga's order side lives.

Orders owns the order's status and nothing else: after acceptance it never cancels on its
own; an enterprise cancel (or the signing time-out) becomes the effect ``request_void`` (the
event ``orders.cancellation_requested``) and the state only moves when contracts answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.rules import Refusal


class Status(StrEnum):
    PENDING_VOUCHER = "pending_voucher"
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    AWAITING_CONTRACT = "awaiting_contract"
    AWAITING_DEPOSIT = "awaiting_deposit"
    AWAITING_SERVICE = "awaiting_service"
    IN_SERVICE = "in_service"
    AWAITING_BALANCE = "awaiting_balance"
    COMPLETED = "completed"
    EVALUATED = "evaluated"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"


class Actor(StrEnum):
    ENTERPRISE = "enterprise"
    PROVIDER = "provider"
    STAFF = "staff"
    SYSTEM = "system"  # another service's event, or a timer


class Step(StrEnum):
    # people
    CANCEL = "cancel"
    PAY = "pay"  # done in payments; here only to say when 支付 is offered
    EVALUATE = "evaluate"
    ACCEPT = "accept"
    REJECT = "reject"
    START_SERVICE = "start_service"
    COMPLETE_SERVICE = "complete_service"
    # other services' facts
    VOUCHER_RESERVED = "voucher_reserved"
    VOUCHER_REJECTED = "voucher_rejected"
    CONTRACT_SIGNED = "contract_signed"
    CONTRACT_VOIDED = "contract_voided"
    CONTRACT_TERMINATED = "contract_terminated"
    PAYMENT_RECEIVED = "payment_received"
    # timers
    ACCEPTANCE_TIMEOUT = "acceptance_timeout"
    SIGNING_TIMEOUT = "signing_timeout"


class Effect(StrEnum):
    PUBLISH_CANCELLED = "publish_cancelled"  # orders.order_cancelled
    PUBLISH_ACCEPTED = "publish_accepted"  # orders.order_accepted
    REQUEST_VOID = "request_void"  # orders.cancellation_requested
    REQUEST_TERMINATION = "request_termination"  # the same, terminate_if_signed=True
    PUBLISH_SERVICE_STARTED = "publish_service_started"
    PUBLISH_SERVICE_COMPLETED = "publish_service_completed"
    PUBLISH_COMPLETED = "publish_completed"  # orders.order_completed
    RECORD_EVALUATION = "record_evaluation"  # + orders.order_evaluated
    START_SIGNING_TIMER = "start_signing_timer"
    STOP_TIMERS = "stop_timers"


PEOPLE_STEPS: dict[Actor, tuple[Step, ...]] = {
    Actor.ENTERPRISE: (Step.CANCEL, Step.PAY, Step.EVALUATE),
    Actor.PROVIDER: (Step.ACCEPT, Step.REJECT, Step.START_SERVICE, Step.COMPLETE_SERVICE),
    Actor.STAFF: (),
    Actor.SYSTEM: (),
}
EVENT_STEPS = (
    Step.VOUCHER_RESERVED,
    Step.VOUCHER_REJECTED,
    Step.CONTRACT_SIGNED,
    Step.CONTRACT_VOIDED,
    Step.CONTRACT_TERMINATED,
    Step.PAYMENT_RECEIVED,
    Step.ACCEPTANCE_TIMEOUT,
    Step.SIGNING_TIMEOUT,
)

SIGNED = frozenset(
    {
        Status.AWAITING_DEPOSIT,
        Status.AWAITING_SERVICE,
        Status.IN_SERVICE,
        Status.AWAITING_BALANCE,
        Status.COMPLETED,
        Status.EVALUATED,
    }
)
ENDED = frozenset({Status.CANCELLED, Status.TERMINATED})
BEFORE_ACCEPTANCE = frozenset({Status.PENDING_VOUCHER, Status.AWAITING_ACCEPTANCE})
SERVICE_DONE = frozenset({Status.AWAITING_BALANCE, Status.COMPLETED, Status.EVALUATED})
# what a person may not do while payments decides a termination of the signed contract
FROZEN_WHILE_TERMINATING = frozenset({Step.CANCEL, Step.PAY, Step.START_SERVICE, Step.COMPLETE_SERVICE})


@dataclass(frozen=True)
class Facts:
    """What the machine needs besides the state (read from the order, or from the event)."""

    paid_fen: int = 0
    deposit_met: bool = False
    fully_paid: bool = False
    evaluated: bool = False
    # the status in which a cancellation was requested and not yet answered by contracts
    cancel_requested_in: Status | None = None
    # a termination being decided (contracts asked payments): no payment, cancel or service step
    termination_pending: bool = False
    # contract_signed: the contract's payable and deposit (a stage of 0 is met at once)
    payable_fen: int = 0
    deposit_fen: int = 0
    # the contract as contracts announced it (its state, who has signed): for its actions
    contract: ContractCopy | None = None


@dataclass(frozen=True)
class Move:
    to: Status
    effects: tuple[Effect, ...] = ()


# No move is a ``common.rules.Refusal(code, state=..., step=...)``: ``code`` is the stable
# problem code (errors.from_refusal answers it, naming the state and the step). An event refused
# with EARLY came before the fact it follows (its handler retries it later); refused with any
# other code it is already reflected or cannot apply (its handler changes nothing).
CONFLICT = "order_state_conflict"
EARLY = "event_early"

Outcome = Move | Refusal


def _payment_stage(payable_fen: int, deposit_fen: int, deposit_met: bool, fully_paid: bool) -> Status:
    if payable_fen == 0 or fully_paid or deposit_fen == 0 or deposit_met:
        return Status.AWAITING_SERVICE
    return Status.AWAITING_DEPOSIT


def decide(state: Status, step: Step, actor: Actor, facts: Facts | None = None) -> Outcome:
    """Where ``step`` by ``actor`` takes an order in ``state`` (DESIGN.md's saga table)."""
    f = facts or Facts()
    no = Refusal(CONFLICT, state=state, step=step)
    if step in PEOPLE_STEPS[Actor.ENTERPRISE] and actor is not Actor.ENTERPRISE:
        return Refusal("forbidden_actor", state=state, step=step)
    if step in PEOPLE_STEPS[Actor.PROVIDER] and actor is not Actor.PROVIDER:
        return Refusal("forbidden_actor", state=state, step=step)
    if step in EVENT_STEPS and actor is not Actor.SYSTEM:
        return Refusal("forbidden_actor", state=state, step=step)
    S = Status
    if f.termination_pending and step in FROZEN_WHILE_TERMINATING and state in SIGNED:
        return Refusal("termination_pending", state=state, step=step)
    match step:
        case Step.CANCEL:
            if state in BEFORE_ACCEPTANCE:
                return Move(S.CANCELLED, (Effect.PUBLISH_CANCELLED, Effect.STOP_TIMERS))
            if state in (S.AWAITING_CONTRACT, S.AWAITING_DEPOSIT) and f.cancel_requested_in == state:
                return Refusal("cancellation_pending", state=state, step=step)
            if state is S.AWAITING_CONTRACT:
                return Move(state, (Effect.REQUEST_VOID,))
            if state is S.AWAITING_DEPOSIT:
                if f.paid_fen > 0:
                    return Refusal("order_already_paid", state=state, step=step)
                return Move(state, (Effect.REQUEST_TERMINATION,))
            return no
        case Step.PAY:
            if state in (S.AWAITING_DEPOSIT, S.AWAITING_BALANCE) and not f.fully_paid:
                return Move(state)
            return no
        case Step.EVALUATE:
            if state not in SERVICE_DONE:
                return no
            if f.evaluated or state is S.EVALUATED:
                return Refusal("already_evaluated", state=state, step=step)
            return Move(S.EVALUATED if state is S.COMPLETED else state, (Effect.RECORD_EVALUATION,))
        case Step.ACCEPT:
            if state is S.AWAITING_ACCEPTANCE:
                return Move(S.AWAITING_CONTRACT, (Effect.PUBLISH_ACCEPTED, Effect.START_SIGNING_TIMER))
            return no
        case Step.REJECT:
            if state is S.AWAITING_ACCEPTANCE:
                return Move(S.CANCELLED, (Effect.PUBLISH_CANCELLED, Effect.STOP_TIMERS))
            return no
        case Step.START_SERVICE:
            if state is S.AWAITING_SERVICE:
                return Move(S.IN_SERVICE, (Effect.PUBLISH_SERVICE_STARTED,))
            return no
        case Step.COMPLETE_SERVICE:
            if state is not S.IN_SERVICE:
                return no
            if f.fully_paid:
                done = S.EVALUATED if f.evaluated else S.COMPLETED
                return Move(done, (Effect.PUBLISH_SERVICE_COMPLETED, Effect.PUBLISH_COMPLETED))
            return Move(S.AWAITING_BALANCE, (Effect.PUBLISH_SERVICE_COMPLETED,))
        # --- other services' facts ------------------------------------------------------------
        case Step.VOUCHER_RESERVED:
            if state is S.PENDING_VOUCHER:
                return Move(S.AWAITING_ACCEPTANCE)
            return no  # cancelled meanwhile: quota releases on order_cancelled
        case Step.VOUCHER_REJECTED:
            if state is S.PENDING_VOUCHER:
                return Move(S.CANCELLED, (Effect.PUBLISH_CANCELLED, Effect.STOP_TIMERS))
            return no
        case Step.CONTRACT_SIGNED:
            if state is S.AWAITING_CONTRACT:
                stage = _payment_stage(f.payable_fen, f.deposit_fen, f.deposit_met, f.fully_paid)
                return Move(stage, (Effect.STOP_TIMERS,))
            if state in BEFORE_ACCEPTANCE:
                return Refusal(EARLY, state=state, step=step)
            return no  # already signed (reflected)
        case Step.CONTRACT_VOIDED:
            if state is S.AWAITING_CONTRACT:
                return Move(S.CANCELLED, (Effect.PUBLISH_CANCELLED, Effect.STOP_TIMERS))
            if state in BEFORE_ACCEPTANCE:
                return Refusal(EARLY, state=state, step=step)
            return no
        case Step.CONTRACT_TERMINATED:
            if state in SIGNED:
                return Move(S.TERMINATED, (Effect.STOP_TIMERS,))
            if state in BEFORE_ACCEPTANCE or state is S.AWAITING_CONTRACT:
                return Refusal(EARLY, state=state, step=step)  # its signing has not arrived yet
            return no
        case Step.PAYMENT_RECEIVED:
            if state in BEFORE_ACCEPTANCE or state is S.AWAITING_CONTRACT:
                return Refusal(EARLY, state=state, step=step)  # a payment before its signing
            if state is S.AWAITING_DEPOSIT and (f.deposit_met or f.fully_paid):
                return Move(S.AWAITING_SERVICE)
            if state is S.AWAITING_BALANCE and f.fully_paid:
                done = S.EVALUATED if f.evaluated else S.COMPLETED
                return Move(done, (Effect.PUBLISH_COMPLETED,))
            return Move(state)  # recorded; the status does not change
        case Step.ACCEPTANCE_TIMEOUT:
            if state in BEFORE_ACCEPTANCE:
                return Move(S.CANCELLED, (Effect.PUBLISH_CANCELLED,))
            return no
        case Step.SIGNING_TIMEOUT:
            if state is S.AWAITING_CONTRACT and f.cancel_requested_in != state:
                return Move(state, (Effect.REQUEST_VOID,))
            return no
    return no  # pragma: no cover - every step is matched above


# --- a termination asked of orders (DESIGN.md "Termination") --------------------------------
# Orders decides what must not happen together with a termination: the service's completion.
# Agreeing freezes the order (termination_pending) until the contract is terminated or the
# request withdrawn, so the service can no longer be completed meanwhile.

TERMINATION_REFUSALS: dict[str, str] = {
    "service_completed": "服务已完成，不能终止合同（完成后的争议请线下处理并登记）",
    "cancel_not_allowed": "订单已不在待支付状态，不能取消，如有争议请联系平台",
}


def termination_refusal(state: Status, requested_by: str) -> Refusal | None:
    """Why orders refuses a termination of the order in ``state``, in the words the parties
    read (None: it agrees). Answered as an event (orders.order_termination_refused), not a
    problem: the caller needs both outcomes as data."""
    if state in SERVICE_DONE:
        code = "service_completed"
    elif requested_by == "enterprise" and state is not Status.AWAITING_DEPOSIT:
        code = "cancel_not_allowed"  # the enterprise's cancel is a termination before performance
    else:
        return None
    return Refusal(code, detail=TERMINATION_REFUSALS[code])


def actions(state: Status, actor: Actor, facts: Facts | None = None) -> list[str]:
    """What ``actor`` may do now (the manual's row buttons besides 查看), from the machine:
    the order's steps, then the contract's (:func:`contract_actions`), so a list row needs no
    call to contracts."""
    f = facts or Facts()
    steps = [str(s) for s in PEOPLE_STEPS[actor] if isinstance(decide(state, s, actor, f), Move)]
    return steps + contract_actions(state, actor, f)


# --- the contract, as orders knows it (contracts' events) -----------------------------------
# Contracts owns the contract; orders keeps a copy of its state and of who has signed
# (contracts.contract_submitted / _returned / _agreed / _party_signed / _signed / _voided /
# termination_requested / _withdrawn / _terminated), so an order row offers the contract's
# buttons without a call per row. Contracts still decides each of them when it is pressed.


# --- the voucher's second state machine ------------------------------------------------------
# Orders' copy of where quota holds the order's subsidy, moved only by quota's facts (and the
# settlement that ends it). A fact heard before the one it follows waits (``early``); one that
# finds the copy anywhere but its ``from_`` state is already reflected or overtaken: nothing.


class VoucherState(StrEnum):
    NONE = "none"  # no voucher asked for (不使用服务券)
    PENDING = "pending"  # asked on submission; quota has not answered
    RESERVED = "reserved"  # 服务券预留
    REJECTED = "rejected"  # 服务券预留失败
    COMMITTED = "committed"  # 服务券抵扣, on the signing
    RELEASED = "released"  # the reservation given back (cancelled before the signing)
    REVERSED = "reversed"  # the deduction given back (terminated after the signing)
    SETTLED = "settled"  # the subsidy paid to the provider


# the states in which quota holds a subsidy for the order
VOUCHER_HELD = frozenset({VoucherState.RESERVED, VoucherState.COMMITTED})


class VoucherFact(StrEnum):
    RESERVED = "reserved"
    REJECTED = "rejected"
    DEDUCTED = "deducted"
    RELEASED = "released"
    REVERSED = "reversed"
    SETTLED = "settled"


@dataclass(frozen=True)
class VoucherRule:
    from_: VoucherState
    to: VoucherState
    early: frozenset[VoucherState] = frozenset()


_ASKED_ONLY = frozenset({VoucherState.NONE, VoucherState.PENDING})
VOUCHER_RULES: dict[VoucherFact, VoucherRule] = {
    VoucherFact.RESERVED: VoucherRule(VoucherState.PENDING, VoucherState.RESERVED),
    VoucherFact.REJECTED: VoucherRule(VoucherState.PENDING, VoucherState.REJECTED),
    VoucherFact.DEDUCTED: VoucherRule(VoucherState.RESERVED, VoucherState.COMMITTED, _ASKED_ONLY),
    VoucherFact.RELEASED: VoucherRule(VoucherState.RESERVED, VoucherState.RELEASED, _ASKED_ONLY),
    VoucherFact.REVERSED: VoucherRule(
        VoucherState.COMMITTED, VoucherState.REVERSED, _ASKED_ONLY | {VoucherState.RESERVED}
    ),
    VoucherFact.SETTLED: VoucherRule(VoucherState.COMMITTED, VoucherState.SETTLED),
}


def voucher_early(state: VoucherState, fact: VoucherFact) -> bool:
    """Did quota's fact come before the one it follows (a deduction before its reservation)?"""
    return state in VOUCHER_RULES[fact].early


def voucher_next(state: VoucherState, fact: VoucherFact) -> VoucherState | None:
    """The state the fact moves the copy to; None when it is already reflected or overtaken."""
    rule = VOUCHER_RULES[fact]
    return rule.to if state is rule.from_ else None


class ContractState(StrEnum):
    DRAFTING = "drafting"
    PENDING_REVIEW = "pending_review"
    RETURNED = "returned"
    AGREED = "agreed"
    SIGNED = "signed"
    TERMINATING = "terminating"
    VOIDED = "voided"
    TERMINATED = "terminated"


class ContractAction(StrEnum):
    VIEW = "view_contract"  # 查看合同 (either party)
    EDIT = "edit_contract"  # 起草合同 / 修改合同 (provider)
    AGREE = "agree_contract"  # 同意 (enterprise)
    RETURN = "return_contract"  # 退回修改 (enterprise)
    SIGN = "sign_contract"  # 签署 (each party once)


@dataclass(frozen=True)
class ContractCopy:
    """``state`` None: contracts has announced nothing yet (its draft is made on acceptance)."""

    state: ContractState | None = None
    enterprise_signed: bool = False
    provider_signed: bool = False

    def signed_by(self, actor: Actor) -> bool:
        return (actor is Actor.ENTERPRISE and self.enterprise_signed) or (
            actor is Actor.PROVIDER and self.provider_signed
        )


# the states in which a submitted version exists for both parties to read (查看合同)
CONTRACT_READABLE = frozenset(
    {
        ContractState.PENDING_REVIEW,
        ContractState.RETURNED,
        ContractState.AGREED,
        ContractState.SIGNED,
        ContractState.TERMINATING,
        ContractState.TERMINATED,
    }
)


def contract_state_of(state: Status, contract: ContractCopy | None) -> ContractState | None:
    """The contract's state: as announced, else a draft while the order awaits its contract."""
    if contract is not None and contract.state is not None:
        return contract.state
    return ContractState.DRAFTING if state is Status.AWAITING_CONTRACT else None


def contract_actions(state: Status, actor: Actor, facts: Facts | None = None) -> list[str]:
    """The contract's buttons for ``actor`` (the parties only), as contracts' rules allow them:
    the provider drafts while drafting or returned, the enterprise agrees or returns a
    submitted version, each party signs the agreed contract once; both read it once submitted.
    Nothing but 查看合同 while a cancellation of the order is being decided."""
    if actor not in (Actor.ENTERPRISE, Actor.PROVIDER):
        return []
    f = facts or Facts()
    copy = f.contract or ContractCopy()
    current = contract_state_of(state, copy)
    if current is None:
        return []
    acts: list[ContractAction] = []
    if current in CONTRACT_READABLE:
        acts.append(ContractAction.VIEW)
    if state is Status.AWAITING_CONTRACT and f.cancel_requested_in != state:
        if actor is Actor.PROVIDER and current in (ContractState.DRAFTING, ContractState.RETURNED):
            acts.append(ContractAction.EDIT)
        if actor is Actor.ENTERPRISE and current is ContractState.PENDING_REVIEW:
            acts += [ContractAction.AGREE, ContractAction.RETURN]
        if current is ContractState.AGREED and not copy.signed_by(actor):
            acts.append(ContractAction.SIGN)
    return [str(a) for a in acts]


# --- the six-step bar of the order page (订单状态) -------------------------------------------

ORDER_STEPS: tuple[str, ...] = ("申请服务", "服务机构接单", "签订合同", "线上支付", "完成服务", "评价服务")

# the steps (1-6) an order has done, by status; 待支付 after the service (the balance) keeps
# 线上支付 open although 完成服务 is done
_STEPS_DONE: dict[Status, tuple[int, ...]] = {
    Status.PENDING_VOUCHER: (1,),
    Status.AWAITING_ACCEPTANCE: (1,),
    Status.AWAITING_CONTRACT: (1, 2),
    Status.AWAITING_DEPOSIT: (1, 2, 3),
    Status.AWAITING_SERVICE: (1, 2, 3, 4),
    Status.IN_SERVICE: (1, 2, 3, 4),
    Status.AWAITING_BALANCE: (1, 2, 3, 5),
    Status.COMPLETED: (1, 2, 3, 4, 5),
    Status.EVALUATED: (1, 2, 3, 4, 5, 6),
}


@dataclass(frozen=True)
class Progress:
    """``current``: the step (1-6) the order is at, the first not done (6 once all are done);
    None once the order ended (cancelled or terminated). ``done``: the steps done."""

    current: int | None
    done: tuple[int, ...]


def progress(state: Status, *, accepted: bool = False, signed: bool = False) -> Progress:
    """Where the order stands on the six-step bar. An ended order keeps what it got done
    before it ended (``accepted``, ``signed``) and has no current step."""
    if state in ENDED:
        done = (1,) + ((2,) if accepted else ()) + ((3,) if signed else ())
        return Progress(None, done)
    done = _STEPS_DONE[state]
    rest = [n for n in range(1, len(ORDER_STEPS) + 1) if n not in done]
    return Progress(rest[0] if rest else len(ORDER_STEPS), done)


# 双方接洽 (issue 13): between acceptance and the contract the two parties talk, so from the
# moment an order exists each party sees the other's contact (and its own), in full, and staff
# see both (a dispute, a complaint); nobody else does (they do not see the order at all).
CONTACT_VIEWERS = frozenset({Actor.ENTERPRISE, Actor.PROVIDER, Actor.STAFF})


def sees_contacts(viewer: Actor | None) -> bool:
    return viewer in CONTACT_VIEWERS


# --- tabs and labels (DESIGN.md "Order status and the manual's tabs") ----------------------

TABS: dict[str, tuple[str, tuple[Status, ...]]] = {
    "awaiting_acceptance": ("待接单", (Status.PENDING_VOUCHER, Status.AWAITING_ACCEPTANCE)),
    "awaiting_contract": ("待签合同", (Status.AWAITING_CONTRACT,)),
    "awaiting_payment": ("待支付", (Status.AWAITING_DEPOSIT, Status.AWAITING_BALANCE)),
    "awaiting_service": ("待服务", (Status.AWAITING_SERVICE,)),
    "in_service": ("待完成", (Status.IN_SERVICE,)),
    "completed": ("已完成", (Status.COMPLETED,)),
    "cancelled": ("订单取消", (Status.CANCELLED, Status.TERMINATED)),
    "evaluated": ("评价完成", (Status.EVALUATED,)),
}
ALL_TAB = "all"  # 全部

STATUS_LABELS: dict[Status, str] = {
    Status.PENDING_VOUCHER: "待接单",
    Status.AWAITING_ACCEPTANCE: "待接单",
    Status.AWAITING_CONTRACT: "待签合同",
    Status.AWAITING_DEPOSIT: "待支付",
    Status.AWAITING_SERVICE: "待服务",
    Status.IN_SERVICE: "待完成",
    Status.AWAITING_BALANCE: "待支付",
    Status.COMPLETED: "待评价",  # tab 已完成, row label 待评价 (the manual)
    Status.EVALUATED: "评价完成",
    Status.CANCELLED: "订单取消",
    Status.TERMINATED: "订单取消",
}


def tab_of(state: Status) -> str:
    for key, (_label, statuses) in TABS.items():
        if state in statuses:
            return key
    raise ValueError(state)  # pragma: no cover - every status has a tab


def statuses_of(tab: str) -> tuple[Status, ...]:
    return TABS[tab][1]


# 服务评价: the manual's labels for 1-5 stars
RATING_LABELS: dict[int, str] = {1: "非常不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"}
EVALUATION_MAX_CHARS = 200
