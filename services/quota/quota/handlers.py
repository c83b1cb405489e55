"""Events quota consumes: inbox + ordering guard + aggregate lock + one commit.

Quota's aggregate in the saga is the order's reservation (aggregate_id = the order id); each
handler takes the ordering guard for the publisher's stream of that order, then the
reservation's lock, then the voucher's (and the provider cap's), always in that order.
Every step is idempotent: a repeat finds the reservation already past it and changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import register_access_handlers
from common.bus import Consumer, emit
from common.bus.ordering import last_applied, ordered
from common.events import (
    ContractSigned,
    ContractTerminated,
    ContractVoided,
    Envelope,
    EventPayload,
    OrderCancelled,
    OrderSubmitted,
    SettlementPaid,
)
from common.orgs import register_org_handlers
from quota.config import Settings
from quota.service import vouchers as ledger


async def _emit(session: AsyncSession, payload: EventPayload | None, order_id: str) -> None:
    if payload is not None:
        await emit(session, payload, aggregate_id=order_id)


def build_consumer(settings: Settings | None = None) -> Consumer:
    consumer = Consumer("quota")
    register_org_handlers(consumer)
    register_access_handlers(consumer)
    default_cap = (
        settings.default_provider_cap_fen
        if settings
        else Settings.model_fields["default_provider_cap_fen"].default
    )

    async def submission_settled(session: AsyncSession, order_id: str) -> bool:
        """Has quota applied any of orders' facts about this order? Its submission is the
        first of them, so from then on it was either applied (the reservation row exists) or
        is stale for good (a later fact, its cancellation, overtook it): "no reservation" is
        then final and nothing is worth waiting for.

        Read BEFORE the reservation: a submission committing in between leaves its row
        visible to the later read (the guard and the row share its transaction), and a
        cancellation that committed can only have come after the submission's commit or
        made it stale."""
        return await last_applied(session, consumer.name, "orders", order_id) > 0

    @consumer.on(OrderSubmitted.event_type)
    async def order_submitted(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderSubmitted = event.payload
        if not await ordered(session, consumer.name, event):
            return  # a later fact of this order (its cancellation) is already reflected
        result = await ledger.reserve_for_order(session, p, event.occurred_at, default_cap_fen=default_cap)
        await _emit(session, result, p.order_id)

    @consumer.on(OrderCancelled.event_type)
    async def order_cancelled(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderCancelled = event.payload
        if not await ordered(session, consumer.name, event):
            return
        # An order cancelled before its submission reached quota: the guard now makes that
        # late submission stale, so there is nothing to wait for.
        result = await ledger.release_for_order(session, p.order_id, p.reason, wait_for_submission=False)
        await _emit(session, result, p.order_id)

    @consumer.on(ContractVoided.event_type)
    async def contract_voided(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractVoided = event.payload
        if not await ordered(session, consumer.name, event):
            return
        # Without a reservation it waits for the submission, unless the ordering guard
        # already judged that submission stale: then it is acknowledged and changes nothing
        # (a retry would only wait into the DLQ for a reservation that can never come).
        settled = await submission_settled(session, p.order_id)
        result = await ledger.release_for_order(
            session, p.order_id, p.reason, wait_for_submission=not settled
        )
        await _emit(session, result, p.order_id)

    @consumer.on(ContractSigned.event_type)
    async def contract_signed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractSigned = event.payload
        if not await ordered(session, consumer.name, event):
            return
        result = await ledger.commit_for_order(session, p)
        await _emit(session, result, p.order_id)

    @consumer.on(ContractTerminated.event_type)
    async def contract_terminated(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractTerminated = event.payload
        if not await ordered(session, consumer.name, event):
            return
        result = await ledger.reverse_for_order(session, p)
        await _emit(session, result, p.order_id)

    @consumer.on(SettlementPaid.event_type)
    async def settlement_paid(session: AsyncSession, event: Envelope[Any]) -> None:
        p: SettlementPaid = event.payload
        if not await ordered(session, consumer.name, event):
            return
        await ledger.settle_for_order(session, p)

    return consumer
