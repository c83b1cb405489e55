"""Events payments consumes: inbox + ordering guard + aggregate lock + one commit.

- ``identity.bank_account_changed``: the provider's receiving account, last writer wins
  (aggregate = the organisation, its own ``bank_account`` stream of the ordering guard);
- ``contracts.contract_signed``: the plan (aggregate = the order, like every saga event);
- ``contracts.contract_voided``: an unsigned contract has no plan here; a plan somehow
  present and untouched is closed;
- ``contracts.termination_requested``: payments decides (service.terminations): refused, or
  accepted and every payout held; ``contracts.termination_withdrawn`` lets payouts go on.
  Early before the plan;
- ``contracts.contract_terminated``: the plan is terminated (an unpaid claim cancelled, a
  refund due for every confirmed transfer, pending ones still decidable); a paid claim (a
  termination never asked of payments) is kept, and a conflict for staff;
- ``orders.service_started`` / ``service_completed``: what the termination decision needs;
- ``orders.order_completed``: the settlement claim for the committed subsidy; early before
  the plan.

The ordering guard runs after the early checks: a retried event rolls back, so an early
termination never makes the later-arriving signing look stale.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from common.access import register_access_handlers
from common.bus import Consumer, Poison
from common.bus.ordering import ordered
from common.db import lock, lock_existing
from common.events import (
    BankAccountChanged,
    ContractSigned,
    ContractTerminated,
    ContractVoided,
    Envelope,
    OrderCompleted,
    ServiceCompleted,
    ServiceStarted,
    TerminationRequested,
    TerminationWithdrawn,
)
from common.orgs import register_org_handlers
from common.timers import RetryLater, utcnow
from payments.domain.remittances import PlanState
from payments.models import Payee, PaymentPlan
from payments.service import remittances, settlements, terminations

log = structlog.get_logger(__name__)


def build_consumer() -> Consumer:
    consumer = Consumer("payments")
    register_org_handlers(consumer)
    register_access_handlers(consumer)

    @consumer.on(BankAccountChanged.event_type)
    async def bank_account_changed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: BankAccountChanged = event.payload
        await session.execute(pg_insert(Payee).values(org_id=p.org_id).on_conflict_do_nothing())
        payee = await lock_existing(session, Payee, p.org_id)
        if not await ordered(session, consumer.name, event, stream="bank_account"):
            return  # a newer account is already kept
        payee.account_name, payee.bank_name, payee.bank_region = p.account_name, p.bank_name, p.bank_region
        payee.branch_name, payee.account_number = p.branch_name, p.account_number
        payee.updated_at = utcnow()
        session.add(payee)

    @consumer.on(ContractSigned.event_type)
    async def contract_signed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractSigned = event.payload
        if await lock(session, PaymentPlan, p.order_id) is not None:
            return  # already planned (the same signing delivered again)
        if not await ordered(session, consumer.name, event, stream="contract"):
            return
        try:
            await remittances.create_plan(session, p)
        except ValueError as exc:  # figures that do not add up: never a plan, parked with why
            raise Poison(f"contract_signed of order {p.order_id}: {exc}") from exc

    @consumer.on(ContractVoided.event_type)
    async def contract_voided(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractVoided = event.payload
        plan = await lock(session, PaymentPlan, p.order_id)
        if not await ordered(session, consumer.name, event, stream="contract"):
            return
        if plan is None:
            return  # the usual case: an unsigned contract never had a plan
        if plan.state == PlanState.OPEN and plan.paid_fen == 0 and plan.pending_fen == 0:
            plan.state = PlanState.CLOSED.value
            plan.updated_at = utcnow()
            session.add(plan)
        else:
            log.warning("void_of_a_plan_with_money", order_id=p.order_id, state=plan.state)

    async def locked_plan(session: AsyncSession, order_id: str, what: str) -> PaymentPlan:
        plan = await lock(session, PaymentPlan, order_id)
        if plan is None:
            raise RetryLater(f"{what} of order {order_id} before its signing reached payments")
        return plan

    @consumer.on(TerminationRequested.event_type)
    async def termination_requested(session: AsyncSession, event: Envelope[Any]) -> None:
        p: TerminationRequested = event.payload
        plan = await locked_plan(session, p.order_id, "termination request")
        if not await ordered(session, consumer.name, event, stream="contract"):
            return
        await terminations.decide(session, plan, p)

    @consumer.on(TerminationWithdrawn.event_type)
    async def termination_withdrawn(session: AsyncSession, event: Envelope[Any]) -> None:
        p: TerminationWithdrawn = event.payload
        plan = await locked_plan(session, p.order_id, "termination withdrawal")
        if not await ordered(session, consumer.name, event, stream="contract"):
            return
        await terminations.withdrawn(session, plan, p.request_id)

    @consumer.on(ContractTerminated.event_type)
    async def contract_terminated(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ContractTerminated = event.payload
        plan = await locked_plan(session, p.order_id, "termination")
        if not await ordered(session, consumer.name, event, stream="contract"):
            return
        await terminations.contract_terminated(session, plan, p.reason)

    @consumer.on(ServiceStarted.event_type)
    async def service_started(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ServiceStarted = event.payload
        plan = await locked_plan(session, p.order_id, "service start")
        if not await ordered(session, consumer.name, event, stream="service"):
            return
        await terminations.service_started(session, plan, event.occurred_at)

    @consumer.on(ServiceCompleted.event_type)
    async def service_completed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ServiceCompleted = event.payload
        plan = await locked_plan(session, p.order_id, "service completion")
        if not await ordered(session, consumer.name, event, stream="service"):
            return
        await terminations.service_completed(session, plan, event.occurred_at)

    @consumer.on(OrderCompleted.event_type)
    async def order_completed(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrderCompleted = event.payload
        plan = await locked_plan(session, p.order_id, "completion")
        if not await ordered(session, consumer.name, event, stream="order"):
            return
        await terminations.service_completed(session, plan, event.occurred_at)
        if p.subsidy_fen != plan.subsidy_fen:
            log.warning(
                "completed_subsidy_differs",
                order_id=p.order_id,
                order=p.subsidy_fen,
                contract=plan.subsidy_fen,
            )
        if not plan.order_no and p.order_no:
            plan.order_no = p.order_no
            session.add(plan)
        await settlements.open_claim(session, plan, p)

    return consumer
