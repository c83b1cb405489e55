"""Operations on an order, inside the caller's transaction: apply the state machine, write
the timeline, add the outbox events and timers. Nothing here commits.

Every change goes through :func:`transition`: it asks :func:`orders.domain.decide` and, for
a move, sets the status and carries out the move's effects (events, timers). Routes, event
handlers and timers hold the order's row lock (``common.db.lock``) when they call it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common import orgs
from common.auth import Principal
from common.bus import emit
from common.categories import voucher_type_for
from common.errors import Problem
from common.events import (
    CancellationRequested,
    OrderAccepted,
    OrderAwaitingAcceptance,
    OrderCancelled,
    OrderCompleted,
    OrderEvaluated,
    OrderSubmitted,
    ServiceCompleted,
    ServiceStarted,
)
from common.internal import ServiceClients
from common.numbers import ORDER_PREFIX, next_number
from common.pagination import PageParams, paginate
from common.reads import ProductFacts, Quote
from common.timers import cancel as cancel_timer
from common.timers import schedule, utcnow
from orders import errors
from orders.config import Settings
from orders.domain import (
    ALL_TAB,
    ENDED,
    TABS,
    VOUCHER_HELD,
    Actor,
    ContractCopy,
    ContractState,
    Effect,
    Facts,
    Move,
    Outcome,
    Status,
    Step,
    VoucherState,
    decide,
    statuses_of,
    tab_of,
)
from orders.models import Order, OrderEvaluation, OrderStep, ProductCopy
from orders.schemas import EvaluationIn, OrderIn

log = structlog.get_logger(__name__)

ACCEPTANCE_TIMER = "orders.acceptance_timeout"
SIGNING_TIMER = "orders.signing_timeout"

# the timeline's labels (what the manual shows), per step code
LABELS: dict[str, str] = {
    "submitted": "申请服务",
    "voucher_reserved": "服务券预留",
    "voucher_rejected": "服务券预留失败",
    "cancelled": "取消订单",
    "cancellation_requested": "申请取消订单",
    "termination_requested": "申请取消订单（终止合同）",
    "accepted": "服务机构接单",
    "rejected": "服务机构拒绝接单",
    "acceptance_timeout": "接单超时，订单取消",
    "signing_timeout": "签约超时，申请作废合同",
    "contract_signed": "签订合同",
    "contract_voided": "合同作废，订单取消",
    "contract_terminated": "合同终止，订单取消",
    "voucher_deducted": "服务券抵扣",
    "voucher_released": "服务券释放",
    "voucher_reversed": "服务券抵扣撤销",
    "voucher_reversal_refused": "服务券已兑付，抵扣不撤销",
    "payment_received": "支付成功",
    "service_started": "开始服务",
    "in_service": "服务中",
    "service_completed": "服务完成",
    "order_completed": "订单完成",
    "evaluated": "评价服务",
    "settlement_paid": "服务券兑付",
    "cancellation_refused": "取消订单未获同意",
    "contract_terminating": "合同终止审核中",
    "termination_refused": "合同终止未获同意",
}


@dataclass(frozen=True)
class Why:
    """Who asked for a step and why (timeline, cancellation events)."""

    actor: Actor
    actor_id: str | None = None
    reason: str | None = None
    by: str | None = None  # cancelled_by / requested_by: enterprise | provider | timeout | voucher
    code: str | None = None  # reason_code


def now() -> datetime:
    return utcnow()


def contract_copy(order: Order) -> ContractCopy:
    state = ContractState(order.contract_state) if order.contract_state else None
    return ContractCopy(state, order.contract_enterprise_signed, order.contract_provider_signed)


def facts(order: Order, **extra: Any) -> Facts:
    requested = Status(order.cancel_requested_in) if order.cancel_requested_in else None
    values: dict[str, Any] = {
        "paid_fen": order.paid_fen,
        "deposit_met": order.deposit_met,
        "fully_paid": order.fully_paid,
        "evaluated": order.evaluated_at is not None,
        "cancel_requested_in": requested,
        "termination_pending": order.termination_pending,
        "contract": contract_copy(order),
    }
    values.update(extra)
    return Facts(**values)


def add_step(
    session: AsyncSession,
    order: Order,
    step: str,
    actor: Actor | str,
    actor_id: str | None = None,
    *,
    detail: str | None = None,
    amount_fen: int | None = None,
    label: str | None = None,
    ref: str | None = None,
    at: datetime | None = None,
) -> None:
    """One line of the timeline. ``at`` is when it happened: an event's ``occurred_at`` in the
    service that did it (a payment confirmed at 10:00 reads 10:00 even when orders hears of it
    later), now for what orders itself does."""
    session.add(
        OrderStep(
            order_id=order.id,
            step=step,
            label=label or LABELS.get(step, step),
            actor=str(actor),
            actor_id=actor_id,
            detail=detail,
            amount_fen=amount_fen,
            ref=ref,
            at=at or now(),
        )
    )


async def transition(
    session: AsyncSession,
    settings: Settings,
    order: Order,
    step: Step,
    why: Why,
    **extra_facts: Any,
) -> Outcome:
    """Decide ``step`` for the (locked) order; on a move, apply it and its effects."""
    outcome = decide(Status(order.status), step, why.actor, facts(order, **extra_facts))
    if not isinstance(outcome, Move):
        return outcome
    before = Status(order.status)
    order.status = str(outcome.to)
    order.updated_at = now()
    if outcome.to in ENDED and before not in ENDED:
        order.ended_at = now()
        order.termination_pending = False
        order.cancel_reason = why.reason
        order.cancelled_by = why.by
    if outcome.to is Status.AWAITING_CONTRACT and before is not Status.AWAITING_CONTRACT:
        order.accepted_at = now()
    if outcome.to in (Status.COMPLETED, Status.EVALUATED) and order.completed_at is None:
        order.completed_at = now()
    for effect in outcome.effects:
        await _carry_out(session, settings, order, effect, why, before)
    if outcome.to is Status.AWAITING_ACCEPTANCE and before is not Status.AWAITING_ACCEPTANCE:
        await publish_awaiting_acceptance(session, order)
    session.add(order)
    return outcome


async def publish_awaiting_acceptance(session: AsyncSession, order: Order) -> None:
    """The provider has an order to accept (待接单): demands tells its members."""
    await emit(
        session,
        OrderAwaitingAcceptance(
            order_id=order.id,
            order_no=order.order_no,
            enterprise_id=order.enterprise_id,
            enterprise_name=order.enterprise_name,
            provider_id=order.provider_id,
            provider_name=order.provider_name,
            product_id=order.product_id,
            product_name=order.product_name,
            price_fen=order.price_fen,
            subsidy_fen=order.subsidy_fen if VoucherState(order.voucher_state) in VOUCHER_HELD else 0,
        ),
        aggregate_id=order.id,
    )


async def _carry_out(
    session: AsyncSession, settings: Settings, order: Order, effect: Effect, why: Why, before: Status
) -> None:
    agg = order.id
    match effect:
        case Effect.PUBLISH_CANCELLED:
            await emit(
                session,
                OrderCancelled(
                    order_id=order.id,
                    reason=why.reason or "",
                    cancelled_by=why.by or "system",
                    reason_code=why.code,
                ),
                aggregate_id=agg,
            )
        case Effect.PUBLISH_ACCEPTED:
            await emit(
                session,
                OrderAccepted(
                    order_id=order.id,
                    order_no=order.order_no,
                    enterprise_id=order.enterprise_id,
                    enterprise_name=order.enterprise_name,
                    provider_id=order.provider_id,
                    provider_name=order.provider_name,
                    product_id=order.product_id,
                    product_name=order.product_name,
                    category=order.category,
                    price_fen=order.price_fen,
                    subsidy_reserved_fen=order.subsidy_fen
                    if VoucherState(order.voucher_state) in VOUCHER_HELD
                    else 0,
                    ratio_bp=order.ratio_bp,
                    max_subsidy_fen=order.max_subsidy_fen,
                    voucher_id=order.voucher_id
                    if VoucherState(order.voucher_state) in VOUCHER_HELD
                    else None,
                ),
                aggregate_id=agg,
            )
        case Effect.REQUEST_VOID | Effect.REQUEST_TERMINATION:
            order.cancel_requested_in = str(before)
            order.cancel_refused_reason = None
            order.cancelled_by = why.by  # who asked: shown once contracts answers
            await emit(
                session,
                CancellationRequested(
                    order_id=order.id,
                    reason=why.reason or "",
                    requested_by=why.by or "enterprise",
                    terminate_if_signed=effect is Effect.REQUEST_TERMINATION,
                ),
                aggregate_id=agg,
            )
        case Effect.PUBLISH_SERVICE_STARTED:
            order.service_started_at = now()
            await emit(
                session,
                ServiceStarted(
                    order_id=order.id,
                    provider_id=order.provider_id,
                    enterprise_id=order.enterprise_id,
                    order_no=order.order_no,
                    product_name=order.product_name,
                ),
                aggregate_id=agg,
            )
        case Effect.PUBLISH_SERVICE_COMPLETED:
            order.service_completed_at = now()
            await emit(
                session,
                ServiceCompleted(
                    order_id=order.id,
                    provider_id=order.provider_id,
                    enterprise_id=order.enterprise_id,
                    order_no=order.order_no,
                    product_name=order.product_name,
                    status=order.status,
                ),
                aggregate_id=agg,
            )
        case Effect.PUBLISH_COMPLETED:
            add_step(session, order, "order_completed", Actor.SYSTEM, "orders")
            await emit(
                session,
                OrderCompleted(
                    order_id=order.id,
                    order_no=order.order_no,
                    enterprise_id=order.enterprise_id,
                    provider_id=order.provider_id,
                    product_id=order.product_id,
                    contract_id=order.contract_id,
                    subsidy_fen=order.contract_subsidy_fen or 0,
                    total_fen=order.contract_total_fen
                    if order.contract_total_fen is not None
                    else order.price_fen,
                ),
                aggregate_id=agg,
            )
        case Effect.RECORD_EVALUATION:
            pass  # the evaluation row and its event: :func:`evaluate`
        case Effect.START_SIGNING_TIMER:
            await cancel_timer(session, ACCEPTANCE_TIMER, order.id)
            due = now() + timedelta(seconds=settings.signing_timeout_seconds)
            await schedule(session, SIGNING_TIMER, order.id, due, {"order_id": order.id})
        case Effect.STOP_TIMERS:
            await cancel_timer(session, ACCEPTANCE_TIMER, order.id)
            await cancel_timer(session, SIGNING_TIMER, order.id)


# --- submission ------------------------------------------------------------------------------


def _kept(value: object, limit: int) -> str | None:
    """Another service's text as the order keeps it: None when absent or blank, never longer
    than its column (what identity and catalog hand over already fits; a 500 would lose the
    order for a name)."""
    text = str(value).strip() if value is not None else ""
    return text[:limit] or None


async def _quote(clients: ServiceClients, org_id: str, product: ProductFacts) -> Quote | None:
    return await clients.read(
        "quota",
        "/internal/quote",
        Quote,
        enterprise_id=org_id,
        provider_id=product.provider_id,
        category=product.category,
        price_fen=product.platform_price_fen,
        max_subsidy_fen=product.max_subsidy_fen,
    )


@dataclass
class Read:
    """Another service's answer, or the problem asking it raised, kept to be judged later."""

    value: Any = None
    problem: Problem | None = None

    def result(self) -> Any:
        if self.problem is not None:
            raise self.problem
        return self.value


async def ask(call: Awaitable[Any]) -> Read:
    """Ask another service now, judge the answer later (after the lock, in the rules' order)."""
    try:
        return Read(await call)
    except Problem as exc:
        return Read(problem=exc)


def _quotable(product: ProductFacts | None, org_id: str) -> bool:
    """Whether the submission will get as far as asking quota for a quote (the checks below)."""
    if product is None or product.provider_id == org_id:
        return False
    if product.provider_suspended:
        return False
    if not product.sellable:
        return False
    try:
        voucher_type_for(product.category)
    except ValueError:
        return False
    return True


async def sellable(session: AsyncSession, clients: ServiceClients, product_id: str) -> Read:
    """The product as catalog sells it now (catalog's ``/internal/products``: ``ProductFacts``).

    From orders' copy (``catalog.product_changed``) when it says the product is listed and
    names its provider: no call to catalog on the busiest path (the year-end rush), and
    orders takes orders while catalog is down. Anything else is asked of catalog: a product
    listed a moment ago whose event is in flight, one relisted, a copy from before the
    provider's fields: a copy may only ever say yes sooner, never no. The copy lags catalog by
    the event's flight (seconds): an order made in that moment after an unlisting is made at
    the price the product was listed at; a price change takes the product off the listing for
    review first, so it never sells at a price catalog did not list it for.

    The copy is read, and the session's connection let go (nothing is written yet), before
    catalog is asked: no connection waits in an open transaction on another service."""
    copy = await session.get(ProductCopy, product_id)
    if copy is None or not copy.listed or copy.status != "listed" or copy.provider_name is None:
        await session.rollback()
        return await ask(clients.read("catalog", f"/internal/products/{product_id}", ProductFacts))
    snapshot = Read(
        ProductFacts(
            id=copy.product_id,
            name=copy.name,
            category=copy.category,
            provider_id=copy.provider_id,
            provider_name=copy.provider_name,
            provider_contact_name=copy.provider_contact_name,
            provider_contact_phone=copy.provider_contact_phone,
            platform_price_fen=copy.price_fen,
            market_price_fen=copy.market_price_fen or 0,
            max_subsidy_fen=copy.max_subsidy_fen,
            status=copy.status,
            listed=True,
            provider_suspended=False,  # orders' own copy of the organisation decides below
        )
    )
    await session.rollback()
    return snapshot


async def submit(
    session: AsyncSession, settings: Settings, clients: ServiceClients, principal: Principal, body: OrderIn
) -> Order:
    """POST /orders: the product as catalog sells it now, quota's quote, the order, its event.

    catalog (when orders' copy of the product cannot say yes) and quota are asked while this
    request's session holds no connection (``sellable`` lets it go after reading the copy), and
    their answers judged afterwards in the rules' order (the enterprise first): a connection
    held in an open transaction while another service answers filled orders' pool when
    catalog was slow, and the consumer, on the same pool, applied no event meanwhile. identity
    too (the enterprise when orders' copy is older than its token, the provider when orders
    has no copy of it) is asked with the connection let go: nothing is written before."""
    assert principal.org_id is not None
    product_read = await sellable(session, clients, body.product_id)
    quote_read: Read | None = None
    if body.use_voucher and _quotable(product_read.value, principal.org_id):
        quote_read = await ask(_quote(clients, principal.org_id, product_read.value))
    # nothing is written or locked until the order is made below: when identity must be asked
    # (orders' copy of the enterprise older than its token, no copy of the provider), the
    # session lets its connection go first (let_go); the refusals keep the rules' order
    org = await orgs.require_active(session, principal, clients, let_go=True)
    product: ProductFacts | None = product_read.result()
    if product is None:
        raise errors.product_not_found()
    provider_id = product.provider_id
    if provider_id == principal.org_id:
        raise errors.own_product()
    if not product.sellable:
        raise errors.product_not_listed()
    if product.provider_suspended or await orgs.is_suspended(session, provider_id, clients, let_go=True):
        raise errors.provider_suspended()
    try:
        voucher_type = voucher_type_for(product.category)
    except ValueError:
        raise errors.product_not_listed() from None
    price = product.platform_price_fen
    max_subsidy = product.max_subsidy_fen
    quote: Quote | None = None
    if body.use_voucher:
        quote = (quote_read or await ask(_quote(clients, principal.org_id, product))).result()
        if quote is None or quote.subsidy_fen <= 0:
            raise errors.no_usable_voucher()
    created = now()
    order = Order(
        order_no=await next_number(session, ORDER_PREFIX),
        status=str(Status.PENDING_VOUCHER if quote else Status.AWAITING_ACCEPTANCE),
        enterprise_id=principal.org_id,
        enterprise_name=(org.name if org else "") or "",
        enterprise_user_id=principal.user_id,
        provider_id=provider_id,
        provider_name=product.provider_name,
        product_id=product.id,
        product_name=product.name,
        category=product.category,
        voucher_type=voucher_type,
        price_fen=price,
        market_price_fen=product.market_price_fen,
        max_subsidy_fen=max_subsidy,
        # 双方接洽: the account that orders is the enterprise's contact (its phone the contact
        # phone), as identity names it in the token; the provider's, as catalog publishes it
        enterprise_contact_name=_kept(principal.name, 100),
        enterprise_contact_phone=_kept(principal.phone, 32),
        provider_contact_name=_kept(product.provider_contact_name, 100),
        provider_contact_phone=_kept(product.provider_contact_phone, 32),
        use_voucher=quote is not None,
        voucher_id=quote.voucher_id if quote else None,
        voucher_no=quote.voucher_no if quote else None,
        quoted_subsidy_fen=quote.subsidy_fen if quote else 0,
        subsidy_fen=quote.subsidy_fen if quote else 0,
        ratio_bp=quote.ratio_bp if quote else 0,
        voucher_state=(VoucherState.PENDING if quote else VoucherState.NONE).value,
        created_at=created,
        updated_at=created,
    )
    session.add(order)
    await session.flush()
    add_step(session, order, "submitted", Actor.ENTERPRISE, principal.user_id)
    await emit(
        session,
        OrderSubmitted(
            order_id=order.id,
            order_no=order.order_no,
            enterprise_id=order.enterprise_id,
            enterprise_name=order.enterprise_name,
            provider_id=order.provider_id,
            provider_name=order.provider_name,
            product_id=order.product_id,
            product_name=order.product_name,
            category=order.category,
            voucher_type=order.voucher_type,
            use_voucher=order.use_voucher,
            price_fen=order.price_fen,
            max_subsidy_fen=order.max_subsidy_fen,
            voucher_id=order.voucher_id,
        ),
        aggregate_id=order.id,
    )
    if order.status == Status.AWAITING_ACCEPTANCE:  # no voucher to reserve: the provider's turn now
        await publish_awaiting_acceptance(session, order)
    due = created + timedelta(seconds=settings.acceptance_timeout_seconds)
    await schedule(session, ACCEPTANCE_TIMER, order.id, due, {"order_id": order.id})
    return order


# --- people's steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What identity says of a provider about to accept an order (接单), asked before the
    order is locked and judged after it, in the rules' order: its organisation is not
    suspended (``active``), then it has a receiving account on file (``receiving_account``)."""

    active: Read
    receiving_account: Read


async def provider_standing(session: AsyncSession, clients: ServiceClients, principal: Principal) -> Standing:
    """Asked while the request's session holds no connection: orders' copy of the provider is
    read and let go before identity is asked (about the provider, when the copy is older than
    its token; about its receiving account, which no service keeps a copy of). Asked under
    the order's lock, a slow identity held the lock (the order's events and the enterprise's
    cancellation waited on it) and a connection in an open transaction (a few acceptances
    emptied the pool the consumer shares): the saga fault test, which kills identity."""
    assert principal.org_id is not None
    active = await ask(orgs.require_active(session, principal, clients, let_go=True))
    await session.rollback()  # the copy was only read: its connection goes back to the pool
    if active.problem is not None:  # refused first, so the account is never judged: not asked
        return Standing(active, Read())
    return Standing(active, await ask(orgs.has_receiving_account(clients, principal.org_id)))


async def accept(
    session: AsyncSession, settings: Settings, order: Order, principal: Principal, standing: Standing
) -> Order:
    """接单 on the locked order: only with a receiving account on file (the enterprise pays
    into it), as identity answered before the lock; the order's state is decided under the
    lock (cancelled while identity answered: a 409 naming it)."""
    if not standing.receiving_account.result():
        raise errors.bank_account_required()
    return await act(session, settings, order, Step.ACCEPT, principal, Actor.PROVIDER)


async def act(
    session: AsyncSession,
    settings: Settings,
    order: Order,
    step: Step,
    principal: Principal,
    actor: Actor,
    reason: str | None = None,
) -> Order:
    """A person's step on the locked order; a refusal is a 409 naming the current state."""
    before = Status(order.status)
    why = Why(actor, principal.user_id, reason=reason, by=str(actor))
    outcome = await transition(session, settings, order, step, why)
    if not isinstance(outcome, Move):
        raise errors.from_refusal(outcome)
    uid = principal.user_id
    match step:
        case Step.CANCEL:
            if Effect.REQUEST_VOID in outcome.effects:
                add_step(session, order, "cancellation_requested", actor, uid, detail=reason)
            elif Effect.REQUEST_TERMINATION in outcome.effects:
                add_step(session, order, "termination_requested", actor, uid, detail=reason)
            else:
                add_step(session, order, "cancelled", actor, uid, detail=reason)
        case Step.ACCEPT:
            add_step(session, order, "accepted", actor, uid)
        case Step.REJECT:
            add_step(session, order, "rejected", actor, uid, detail=reason)
        case Step.START_SERVICE:
            add_step(session, order, "service_started", actor, uid)
            add_step(session, order, "in_service", actor, uid)
        case Step.COMPLETE_SERVICE:
            add_step(session, order, "service_completed", actor, uid)
    log.info("order_step", order_id=order.id, step=str(step), before=str(before), after=order.status)
    return order


async def evaluate(
    session: AsyncSession, settings: Settings, order: Order, principal: Principal, body: EvaluationIn
) -> OrderEvaluation:
    why = Why(Actor.ENTERPRISE, principal.user_id)
    outcome = await transition(session, settings, order, Step.EVALUATE, why)
    if not isinstance(outcome, Move):
        raise errors.from_refusal(outcome)
    at = now()
    evaluation = OrderEvaluation(
        order_id=order.id, rating=body.rating, content=body.content, user_id=principal.user_id, created_at=at
    )
    order.evaluated_at = at
    session.add(evaluation)
    session.add(order)
    add_step(session, order, "evaluated", Actor.ENTERPRISE, principal.user_id, detail=f"{body.rating}星")
    await emit(
        session,
        OrderEvaluated(
            order_id=order.id,
            provider_id=order.provider_id,
            product_id=order.product_id,
            rating=body.rating,
            content=body.content,
        ),
        aggregate_id=order.id,
    )
    return evaluation


# --- reads --------------------------------------------------------------------------------------


async def counts(session: AsyncSession, column: Any, org_id: str | None) -> dict[str, int]:
    query = select(col(Order.status), func.count()).group_by(col(Order.status))
    if column is not None:
        query = query.where(column == org_id)
    rows = (await session.exec(query)).all()
    result = {ALL_TAB: 0, **dict.fromkeys(TABS, 0)}
    for status, n in rows:
        result[tab_of(Status(status))] += int(n)
        result[ALL_TAB] += int(n)
    return result


async def page(
    session: AsyncSession,
    column: Any,
    org_id: str | None,
    paging: PageParams,
    *,
    tab: str | None,
    status: Status | None,
) -> tuple[int, list[Order]]:
    query = select(Order)
    if column is not None:
        query = query.where(column == org_id)
    if tab and tab != ALL_TAB:
        query = query.where(col(Order.status).in_([str(s) for s in statuses_of(tab)]))
    if status:
        query = query.where(col(Order.status) == str(status))
    query = query.order_by(col(Order.created_at).desc(), col(Order.order_no).desc())
    return await paginate(session, query, paging)


async def timeline(session: AsyncSession, order_id: str) -> list[OrderStep]:
    query = (
        select(OrderStep)
        .where(col(OrderStep.order_id) == order_id)
        .order_by(col(OrderStep.at), col(OrderStep.id))
    )
    return list((await session.exec(query)).all())
