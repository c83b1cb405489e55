"""Termination against payout, decided here (DESIGN.md "Termination"): contracts asks
(``contracts.termination_requested``); payments refuses, or accepts and holds every payout of
the order, under the plan's lock, the one every payout takes, so a payout and a termination
can never both happen. The hold ends with the termination (``contracts.contract_terminated``:
the plan terminated, confirmed money owed back) or with the request's withdrawal (orders
refused it: payouts go on). Also what orders announces of the service."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import conflict
from common.bus import emit
from common.events import TerminationAccepted, TerminationRefused, TerminationRequested
from common.timers import utcnow
from payments.domain import terminations as rules
from payments.domain.remittances import PlanState
from payments.domain.settlements import S
from payments.models import PaymentPlan, SettlementClaim
from payments.service import refunds, settlements


async def claim_of(session: AsyncSession, order_id: str) -> SettlementClaim | None:
    found = await session.exec(select(SettlementClaim).where(col(SettlementClaim.order_id) == order_id))
    return found.first()


async def decide(session: AsyncSession, plan: PaymentPlan, p: TerminationRequested) -> None:
    """The plan is locked by the caller. Refused: nothing changes here; accepted: payouts are
    held from now on. Either way contracts hears the answer."""
    if plan.state != PlanState.TERMINATED and plan.termination_request_id not in (None, p.request_id):
        plan.termination_request_id = None  # contracts asks anew only once the older one is over
    if plan.state == PlanState.TERMINATED or plan.termination_request_id == p.request_id:
        code = None  # accepted already (a repeated request): say so again
    else:
        claim = await claim_of(session, plan.order_id)
        code = rules.refusal(
            rules.PlanFacts(
                requested_by=p.requested_by,
                paid_fen=plan.paid_fen,
                pending_fen=plan.pending_fen,
                settlement_paid=claim is not None and claim.state == S.PAID,
                service_started=plan.service_started_at is not None,
                service_completed=plan.service_completed_at is not None,
            )
        )
    if code is not None:
        await emit(
            session,
            TerminationRefused(
                order_id=plan.order_id,
                contract_id=p.contract_id,
                request_id=p.request_id,
                reason_code=code,
                reason=rules.REFUSALS[code],
            ),
            aggregate_id=plan.order_id,
        )
        return
    if plan.state != PlanState.TERMINATED:
        plan.termination_request_id = p.request_id
        plan.updated_at = utcnow()
        session.add(plan)
    await emit(
        session,
        TerminationAccepted(
            order_id=plan.order_id, contract_id=p.contract_id, request_id=p.request_id, reason=p.reason
        ),
        aggregate_id=plan.order_id,
    )


async def withdrawn(session: AsyncSession, plan: PaymentPlan, request_id: str) -> None:
    """The request was refused elsewhere: payouts go on (only for the request held)."""
    if plan.state != PlanState.TERMINATED and plan.termination_request_id == request_id:
        plan.termination_request_id = None
        plan.updated_at = utcnow()
        session.add(plan)


async def contract_terminated(session: AsyncSession, plan: PaymentPlan, reason: str) -> None:
    """Contracts terminated the contract (payments and orders both agreed): the plan is
    terminated. A paid claim can only meet it when the termination was never asked of
    payments: the payout stands (never clawed back) and staff see the conflict."""
    if plan.state == PlanState.TERMINATED:
        return
    claim = await claim_of(session, plan.order_id)
    if claim is not None and claim.state == S.PAID:
        conflict(
            session,
            "termination_after_payout",
            "order",
            plan.order_id,
            reason="合同终止时服务券已兑付：兑付不予追回，请线下核实处理",
            settlement_id=claim.id,
            amount_fen=claim.amount_fen,
        )
    await terminate(session, plan, reason)


async def terminate(session: AsyncSession, plan: PaymentPlan, reason: str) -> None:
    """The contract is terminated: the plan takes no more transfers and pays nothing out; an
    unpaid claim is cancelled and every confirmed transfer is owed back. Transfers still
    pending stay decidable (confirmed, they are owed back too)."""
    plan.state = PlanState.TERMINATED.value
    plan.terminated_reason = reason
    plan.terminated_at = plan.updated_at = utcnow()
    session.add(plan)
    await session.flush()
    await settlements.cancel_unpaid(session, plan.order_id)
    await refunds.owe_back_confirmed(session, plan)


async def service_started(session: AsyncSession, plan: PaymentPlan, at: datetime) -> None:
    if plan.service_started_at is None:
        plan.service_started_at = at
        session.add(plan)


async def service_completed(session: AsyncSession, plan: PaymentPlan, at: datetime) -> None:
    """Complete: no termination from now on. Heard after a termination was accepted (orders
    completed the service before it heard of the request): a conflict staff must see."""
    if plan.service_completed_at is not None:
        return
    plan.service_completed_at = at
    plan.service_started_at = plan.service_started_at or at
    session.add(plan)
    if plan.state == PlanState.TERMINATED:
        conflict(
            session,
            "service_completed_after_termination",
            "order",
            plan.order_id,
            reason="服务完成时合同终止已受理：服务机构已完成服务，但合同已终止、不再兑付，请线下核实处理",
            order_no=plan.order_no,
            terminated_reason=plan.terminated_reason,
        )
