"""Events orders consumes: inbox + ordering guard + aggregate lock + one commit.

Each handler locks the order first (the aggregate lock every route and timer takes too),
then asks the ordering guard whether the event is fresh for its stream (one stream per
publishing service; the guard keys on the source): a stale one changes nothing. An event
whose prerequisite this service has not seen yet (a deduction before its reservation, a
payment before its signing) raises ``RetryLater``: retried with backoff, then parked with
the reason. The status only ever moves through :func:`orders.service.transition`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import register_access_handlers
from common.bus import Consumer, RetryLater, emit
from common.bus.ordering import ordered
from common.db import lock, lock_existing
from common.events import (
    CancellationRefused,
    ContractAgreed,
    ContractPartySigned,
    ContractReturned,
    ContractSigned,
    ContractSubmitted,
    ContractTerminated,
    ContractVoided,
    Envelope,
    EventPayload,
    OrderTerminationAgreed,
    OrderTerminationRefused,
    PaymentReceived,
    ProductChanged,
    SettlementPaid,
    TerminationRequested,
    TerminationWithdrawn,
    VoucherDeducted,
    VoucherReleased,
    VoucherReservationRejected,
    VoucherReserved,
    VoucherReversed,
)
from common.orgs import register_org_handlers
from common.rules import Refusal
from common.timers import utcnow
from orders.config import Settings
from orders.domain import (
    BEFORE_ACCEPTANCE,
    EARLY,
    Actor,
    ContractState,
    Outcome,
    Status,
    Step,
    VoucherFact,
    VoucherState,
    termination_refusal,
    voucher_early,
    voucher_next,
)
from orders.models import Order, OrderStep, ProductCopy
from orders.service import Why, add_step, transition

log = structlog.get_logger(__name__)

CONSUMER = "orders"
QUOTA = Why(Actor.SYSTEM, "quota")
Handler = Callable[[Settings, AsyncSession, Envelope[Any]], Awaitable[None]]


async def locked_order(session: AsyncSession, order_id: str) -> Order:
    order = await lock(session, Order, order_id)
    if order is None:
        raise RetryLater(f"order {order_id} not known here (yet)")
    return order


def early_or_ignored(outcome: Outcome, event: Envelope[Any]) -> None:
    """A refused event: retried when it came before the fact it follows, else ignored."""
    if isinstance(outcome, Refusal):
        if outcome.code == EARLY:
            raise RetryLater(
                f"{event.event_type} for an order in {outcome.state}: its prerequisite has not arrived"
            )
        log.info("event_not_applicable", event_type=event.event_type, order_state=str(outcome.state))


def signed_or_ended(order: Order) -> bool:
    """Has the order's signing arrived (or did the order end without one)? A fact about a
    signed contract waits for it: heard first, the signing would look stale after it."""
    return order.contract_id is not None or Status(order.status) in (Status.CANCELLED, Status.TERMINATED)


def fact(session: AsyncSession, order: Order, event: Envelope[Any], step: str, **detail: Any) -> None:
    """A timeline step another service announced: done by that service, at the moment it
    happened there (the event's ``occurred_at``), not when orders heard of it."""
    add_step(session, order, step, Actor.SYSTEM, event.source, at=event.occurred_at, **detail)


async def step_recorded(session: AsyncSession, order_id: str, step: str, ref: str) -> bool:
    query = select(OrderStep.id).where(
        col(OrderStep.order_id) == order_id, col(OrderStep.step) == step, col(OrderStep.ref) == ref
    )
    return (await session.exec(query)).first() is not None


def provider_of(p: ProductChanged) -> dict[str, Any]:
    """The provider's fields of the copy: None (ask catalog) from an event written before
    catalog published them (no name)."""
    if not p.provider_name:
        return {"provider_name": None, "provider_contact_name": None, "provider_contact_phone": None}
    return {
        "provider_name": p.provider_name,
        "provider_contact_name": p.provider_contact_name,
        "provider_contact_phone": p.provider_contact_phone,
        "market_price_fen": p.market_price_fen,
    }


# --- quota: the reservation's movements (the voucher's state machine: orders.domain) ----------


async def quota_fact(
    session: AsyncSession, event: Envelope[Any], fact: VoucherFact, *, after_signing: bool = False
) -> Order | None:
    """The order, locked, when quota's ``fact`` is fresh on quota's stream (None: stale). A fact
    heard before the one it follows, or (``after_signing``) before the signing, waits."""
    order = await locked_order(session, event.payload.order_id)
    state = VoucherState(order.voucher_state)
    if voucher_early(state, fact):
        raise RetryLater(f"{event.event_type} while the voucher is {state}: its prerequisite has not arrived")
    if after_signing and order.contract_id is None:
        # quota deducts on the signing: wait for it, so the timeline reads 签订合同 then
        # 服务券抵扣 whichever of the two events comes first
        raise RetryLater(f"{event.event_type} before the signing it follows")
    if not await ordered(session, CONSUMER, event, stream="quota"):
        return None
    return order


def voucher_moved(session: AsyncSession, order: Order, fact: VoucherFact) -> bool:
    """Move the order's voucher copy by ``fact``; False when it is already reflected."""
    to = voucher_next(VoucherState(order.voucher_state), fact)
    if to is None:
        return False
    order.voucher_state = to.value
    session.add(order)
    return True


async def voucher_reserved(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: VoucherReserved = event.payload
    order = await quota_fact(session, event, VoucherFact.RESERVED)
    if order is None or not voucher_moved(session, order, VoucherFact.RESERVED):
        return
    order.voucher_id, order.voucher_no = p.voucher_id, p.voucher_no
    order.subsidy_fen, order.ratio_bp = p.amount_fen, p.ratio_bp
    fact(session, order, event, "voucher_reserved", amount_fen=p.amount_fen)
    early_or_ignored(await transition(session, settings, order, Step.VOUCHER_RESERVED, QUOTA), event)


async def voucher_rejected(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: VoucherReservationRejected = event.payload
    order = await quota_fact(session, event, VoucherFact.REJECTED)
    if order is None or not voucher_moved(session, order, VoucherFact.REJECTED):
        return
    order.subsidy_fen = 0
    fact(session, order, event, "voucher_rejected", detail=p.reason)
    why = Why(Actor.SYSTEM, "quota", reason=p.reason, by="voucher", code=p.reason_code)
    early_or_ignored(await transition(session, settings, order, Step.VOUCHER_REJECTED, why), event)


async def voucher_deducted(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: VoucherDeducted = event.payload
    order = await quota_fact(session, event, VoucherFact.DEDUCTED, after_signing=True)
    if order is None or not voucher_moved(session, order, VoucherFact.DEDUCTED):
        return
    order.committed_fen, order.released_fen = p.amount_fen, p.released_fen
    fact(session, order, event, "voucher_deducted", amount_fen=p.amount_fen)


async def voucher_released(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: VoucherReleased = event.payload
    order = await quota_fact(session, event, VoucherFact.RELEASED)
    if order is None or not voucher_moved(session, order, VoucherFact.RELEASED):
        return
    order.released_fen = p.amount_fen
    fact(session, order, event, "voucher_released", amount_fen=p.amount_fen)


async def voucher_reversed(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: VoucherReversed = event.payload
    order = await quota_fact(session, event, VoucherFact.REVERSED)
    if order is None:
        return
    if p.refused:
        fact(session, order, event, "voucher_reversal_refused", detail=p.reason)
    elif voucher_moved(session, order, VoucherFact.REVERSED):
        fact(session, order, event, "voucher_reversed", amount_fen=p.amount_fen)


# --- contracts: the contract's state before the signing (for its buttons on a row) ---------
# Drafted on the acceptance orders published, so never ahead of it; each is a newer fact of
# the contract than the one before it on contracts' stream (a stale one changes nothing).


async def contract_fact(session: AsyncSession, event: Envelope[Any]) -> Order | None:
    """The order, locked, when contracts' fact is fresh (None: stale); one heard before the
    acceptance it follows waits."""
    order = await locked_order(session, event.payload.order_id)
    if Status(order.status) in BEFORE_ACCEPTANCE:
        raise RetryLater(f"{event.event_type} before the acceptance")
    if not await ordered(session, CONSUMER, event, stream="contracts"):
        return None
    return order


async def contract_moved(
    session: AsyncSession, event: Envelope[Any], state: ContractState, party: str | None = None
) -> None:
    order = await contract_fact(session, event)
    if order is None:
        return
    order.contract_state = state.value
    if state is ContractState.PENDING_REVIEW:  # a new version: nobody has signed it
        order.contract_enterprise_signed = order.contract_provider_signed = False
    if party == Actor.ENTERPRISE.value:
        order.contract_enterprise_signed = True
    elif party == Actor.PROVIDER.value:
        order.contract_provider_signed = True
    session.add(order)


async def contract_submitted(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    await contract_moved(session, event, ContractState.PENDING_REVIEW)


async def contract_returned(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    await contract_moved(session, event, ContractState.RETURNED)


async def contract_agreed(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    await contract_moved(session, event, ContractState.AGREED)


async def contract_party_signed(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: ContractPartySigned = event.payload
    await contract_moved(session, event, ContractState.AGREED, party=p.party)


# --- contracts: signed, void, terminated -------------------------------------------------


async def contract_signed(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: ContractSigned = event.payload
    order = await contract_fact(session, event)
    if order is None:
        return
    order.contract_state = ContractState.SIGNED.value
    order.contract_enterprise_signed = order.contract_provider_signed = True
    session.add(order)
    if order.contract_id is not None:
        return  # already reflected
    if Status(order.status) is not Status.AWAITING_CONTRACT:
        log.warning("contract_signed_for_ended_order", order_id=order.id, status=order.status)
        return
    order.contract_id = p.contract_id
    order.contract_total_fen, order.contract_subsidy_fen = p.total_fen, p.subsidy_fen
    order.contract_payable_fen, order.deposit_fen, order.balance_fen = (
        p.payable_fen,
        p.deposit_fen,
        p.balance_fen,
    )
    order.outstanding_fen = p.payable_fen
    order.signed_at = utcnow()
    # a stage whose amount is 0 is met at once
    order.deposit_met = p.deposit_fen == 0 or p.payable_fen == 0
    order.fully_paid = p.payable_fen == 0
    fact(session, order, event, "contract_signed", amount_fen=p.total_fen)
    why = Why(Actor.SYSTEM, "contracts")
    outcome = await transition(
        session,
        settings,
        order,
        Step.CONTRACT_SIGNED,
        why,
        payable_fen=p.payable_fen,
        deposit_fen=p.deposit_fen,
    )
    early_or_ignored(outcome, event)


async def contract_voided(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: ContractVoided = event.payload
    order = await contract_fact(session, event)
    if order is None:
        return
    order.contract_state = ContractState.VOIDED.value
    session.add(order)
    by = order.cancelled_by or "system"
    why = Why(Actor.SYSTEM, "contracts", reason=p.reason, by=by, code="contract_voided")
    outcome = await transition(session, settings, order, Step.CONTRACT_VOIDED, why)
    if not isinstance(outcome, Refusal):
        fact(session, order, event, "contract_voided", detail=p.reason)
    early_or_ignored(outcome, event)


# --- about a signed contract: its termination, requests to end it and their answers -----------
# Each concerns a signed contract: heard before the signing, it waits for it (else the
# signing, older on contracts' stream, would look stale).


async def signed_contract_fact(session: AsyncSession, event: Envelope[Any]) -> Order | None:
    """The order, locked, when contracts' fact about its signed contract is fresh (None: stale)."""
    order = await locked_order(session, event.payload.order_id)
    if not signed_or_ended(order):
        raise RetryLater(f"{event.event_type} before the signing it stands on")
    if not await ordered(session, CONSUMER, event, stream="contracts"):
        return None
    return order


async def contract_terminated(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: ContractTerminated = event.payload
    order = await signed_contract_fact(session, event)
    if order is None:
        return
    order.contract_state = ContractState.TERMINATED.value
    session.add(order)
    why = Why(Actor.SYSTEM, "contracts", reason=p.reason, by=p.terminated_by)
    outcome = await transition(session, settings, order, Step.CONTRACT_TERMINATED, why)
    if not isinstance(outcome, Refusal):
        fact(session, order, event, "contract_terminated", detail=p.reason)
    early_or_ignored(outcome, event)


async def termination_requested(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    """Orders decides, under the order's lock, what must not happen with a termination: the
    service's completion. It agrees and freezes the order, or refuses."""
    p: TerminationRequested = event.payload
    order = await signed_contract_fact(session, event)
    if order is None:
        return  # a newer fact of the contract is reflected: this request is over already
    order.contract_state = ContractState.TERMINATING.value  # frozen until decided
    if order.termination_request_id not in (None, p.request_id):
        order.termination_pending, order.termination_request_id = False, None  # an older one is over
    fact(session, order, event, "contract_terminating", detail=p.reason, ref=p.request_id)
    refusal = termination_refusal(Status(order.status), p.requested_by)
    if refusal is None:
        order.termination_pending, order.termination_request_id = True, p.request_id
        answer: EventPayload = OrderTerminationAgreed(
            order_id=order.id, contract_id=p.contract_id, request_id=p.request_id
        )
    else:
        reason = refusal.detail or ""
        fact(session, order, event, "termination_refused", detail=reason, ref=p.request_id)
        order.cancel_refused_reason = reason
        answer = OrderTerminationRefused(
            order_id=order.id,
            contract_id=p.contract_id,
            request_id=p.request_id,
            reason_code=refusal.code,
            reason=reason,
        )
    session.add(order)
    await emit(session, answer, aggregate_id=order.id)


async def termination_withdrawn(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: TerminationWithdrawn = event.payload
    order = await signed_contract_fact(session, event)
    if order is None:
        return
    if order.contract_state == ContractState.TERMINATING.value:
        order.contract_state = ContractState.SIGNED.value  # the signing stands
        session.add(order)
    if order.termination_request_id == p.request_id:
        order.termination_pending, order.termination_request_id = False, None
        order.cancel_refused_reason = p.reason
        fact(session, order, event, "termination_refused", detail=p.reason)
        session.add(order)


async def cancellation_refused(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: CancellationRefused = event.payload
    order = await signed_contract_fact(session, event)
    if order is None:
        return
    fact(session, order, event, "cancellation_refused", detail=p.reason)
    order.cancel_requested_in = None
    order.cancel_refused_reason = p.reason
    session.add(order)


# --- payments -------------------------------------------------------------------------------


async def payment_received(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: PaymentReceived = event.payload
    order = await locked_order(session, p.order_id)
    if order.contract_id is None:
        raise RetryLater("a payment for an order whose signing has not arrived")
    if not await step_recorded(session, order.id, "payment_received", p.remittance_id):
        fact(session, order, event, "payment_received", amount_fen=p.amount_fen, ref=p.remittance_id)
    if not await ordered(session, CONSUMER, event, stream="payment"):
        return  # a newer payment's totals are already reflected
    order.paid_fen, order.outstanding_fen = p.paid_fen, p.outstanding_fen
    order.deposit_met = order.deposit_met or p.deposit_met
    order.fully_paid = order.fully_paid or p.fully_paid
    session.add(order)
    why = Why(Actor.SYSTEM, "payments")
    early_or_ignored(await transition(session, settings, order, Step.PAYMENT_RECEIVED, why), event)


async def settlement_paid(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: SettlementPaid = event.payload
    order = await locked_order(session, p.order_id)
    if order.completed_at is None and Status(order.status) is not Status.TERMINATED:
        raise RetryLater("a settlement before the order's completion")
    if not await ordered(session, CONSUMER, event, stream="settlement"):
        return
    if order.settled_fen:
        return
    order.settled_fen = p.amount_fen
    voucher_moved(session, order, VoucherFact.SETTLED)
    fact(session, order, event, "settlement_paid", amount_fen=p.amount_fen)
    session.add(order)


# --- catalog ----------------------------------------------------------------------------------


async def product_changed(settings: Settings, session: AsyncSession, event: Envelope[Any]) -> None:
    p: ProductChanged = event.payload
    await session.execute(
        pg_insert(ProductCopy)
        .values(
            product_id=p.product_id,
            provider_id=p.provider_id,
            name=p.name,
            category=p.category,
            price_fen=p.price_fen,
            max_subsidy_fen=p.max_subsidy_fen,
            listed=p.listed,
            status=p.status,
            updated_at=utcnow(),
            **provider_of(p),
        )
        .on_conflict_do_nothing()
    )
    copy = await lock_existing(session, ProductCopy, p.product_id)
    if not await ordered(session, CONSUMER, event, stream="product"):
        return
    copy.provider_id, copy.name, copy.category = p.provider_id, p.name, p.category
    copy.price_fen, copy.max_subsidy_fen = p.price_fen, p.max_subsidy_fen
    copy.listed, copy.status, copy.updated_at = p.listed, p.status, utcnow()
    for name, value in provider_of(p).items():
        setattr(copy, name, value)
    session.add(copy)


HANDLERS: dict[type[EventPayload], Handler] = {
    VoucherReserved: voucher_reserved,
    VoucherReservationRejected: voucher_rejected,
    VoucherDeducted: voucher_deducted,
    VoucherReleased: voucher_released,
    VoucherReversed: voucher_reversed,
    ContractSubmitted: contract_submitted,
    ContractReturned: contract_returned,
    ContractAgreed: contract_agreed,
    ContractPartySigned: contract_party_signed,
    ContractSigned: contract_signed,
    ContractVoided: contract_voided,
    ContractTerminated: contract_terminated,
    TerminationRequested: termination_requested,
    TerminationWithdrawn: termination_withdrawn,
    CancellationRefused: cancellation_refused,
    PaymentReceived: payment_received,
    SettlementPaid: settlement_paid,
    ProductChanged: product_changed,
}


def build_consumer(settings: Settings) -> Consumer:
    consumer = Consumer(CONSUMER)
    register_org_handlers(consumer)
    register_access_handlers(consumer)
    for payload, handler in HANDLERS.items():
        consumer.on(payload.event_type)(partial(handler, settings))
    return consumer
