"""Events contracts consumes: inbox + ordering guard + aggregate lock + one commit.

Orders' events for one order are ordered on one stream: a late ``order_accepted`` after the
order's cancellation (request) is stale and makes no draft. Payments' facts only ever grow
(something was paid, the settlement was paid), each on its own stream. The answers to a
termination request (payments' and orders', each on its source's ``termination`` stream)
name the request they answer.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import register_access_handlers
from common.bus import Consumer
from common.bus.ordering import ordered
from common.events import (
    CancellationRequested,
    Envelope,
    OrderAccepted,
    OrderCancelled,
    OrderTerminationAgreed,
    OrderTerminationRefused,
    PaymentReceived,
    SettlementPaid,
    TerminationAccepted,
    TerminationRefused,
)
from common.orgs import register_org_handlers
from contracts.service import contracts as service


def build_consumer() -> Consumer:
    consumer = Consumer("contracts")
    register_org_handlers(consumer)
    register_access_handlers(consumer)

    @consumer.on(OrderAccepted.event_type)
    async def order_accepted(session: AsyncSession, event: Envelope[Any]) -> None:
        if not await ordered(session, consumer.name, event, stream="order"):
            return
        await service.create_draft(session, event.payload)

    @consumer.on(CancellationRequested.event_type)
    async def cancellation_requested(session: AsyncSession, event: Envelope[Any]) -> None:
        if not await ordered(session, consumer.name, event, stream="order"):
            return
        await service.on_cancellation_requested(session, event.payload)

    @consumer.on(OrderCancelled.event_type)
    async def order_cancelled(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderCancelled = event.payload
        if not await ordered(session, consumer.name, event, stream="order"):
            return
        await service.on_order_cancelled(session, p.order_id, p.reason)

    @consumer.on(PaymentReceived.event_type)
    async def payment_received(session: AsyncSession, event: Envelope[Any]) -> None:
        p: PaymentReceived = event.payload
        if not await ordered(session, consumer.name, event, stream="payment"):
            return
        await service.on_payment_received(session, p.order_id, p.paid_fen)

    @consumer.on(SettlementPaid.event_type)
    async def settlement_paid(session: AsyncSession, event: Envelope[Any]) -> None:
        p: SettlementPaid = event.payload
        if not await ordered(session, consumer.name, event, stream="settlement"):
            return
        await service.on_settlement_paid(session, p.order_id)

    # the answers to a termination request, each naming the request it answers: payments
    # (which holds payouts) and orders (which freezes the order) must both agree
    @consumer.on(TerminationAccepted.event_type)
    async def payments_agreed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: TerminationAccepted = event.payload
        if not await ordered(session, consumer.name, event, stream="termination"):
            return
        await service.on_termination_agreed(session, p.order_id, p.request_id, by="payments")

    @consumer.on(TerminationRefused.event_type)
    async def payments_refused(session: AsyncSession, event: Envelope[Any]) -> None:
        p: TerminationRefused = event.payload
        if not await ordered(session, consumer.name, event, stream="termination"):
            return
        await service.on_termination_refused(
            session, p.order_id, p.request_id, code=p.reason_code, reason=p.reason, by="payments"
        )

    @consumer.on(OrderTerminationAgreed.event_type)
    async def orders_agreed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderTerminationAgreed = event.payload
        if not await ordered(session, consumer.name, event, stream="termination"):
            return
        await service.on_termination_agreed(session, p.order_id, p.request_id, by="orders")

    @consumer.on(OrderTerminationRefused.event_type)
    async def orders_refused(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderTerminationRefused = event.payload
        if not await ordered(session, consumer.name, event, stream="termination"):
            return
        await service.on_termination_refused(
            session, p.order_id, p.request_id, code=p.reason_code, reason=p.reason, by="orders"
        )

    return consumer
