"""Demands and responses: the enterprise writes, a reviewer decides, providers respond."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from common.numbers import DEMAND_PREFIX, next_number
from common.orgs import OrgView
from common.rules import Refusal
from common.timers import utcnow
from demands import errors
from demands.domain import demands as rules
from demands.domain import notifications as notices
from demands.models import Demand, DemandResponse
from demands.schemas.demands import DemandIn, ResponseIn
from demands.service import notifications


def _check(body: DemandIn) -> None:
    try:
        rules.check_fields(
            category=body.category,
            budget_mode=body.budget_mode,
            budget_fen=body.budget_fen,
            content=body.content,
        )
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None


def _apply(demand: Demand, body: DemandIn) -> None:
    demand.name, demand.category, demand.content = body.name, body.category, body.content
    demand.budget_mode = body.budget_mode
    demand.budget_fen = body.budget_fen if body.budget_mode == rules.BUDGET_FIXED else None


async def publish(session: AsyncSession, principal: Principal, org: OrgView, body: DemandIn) -> Demand:
    """申请发布需求: a demand 待处理, with the account's phone and the enterprise's name."""
    _check(body)
    now = utcnow()
    demand = Demand(
        demand_no=await next_number(session, DEMAND_PREFIX),
        org_id=org.org_id,
        org_name=org.name,
        contact_phone=principal.phone or "",
        created_by=principal.user_id,
        name="",
        category="",
        budget_mode=rules.BUDGET_QUOTE,
        content="",
        status=rules.Status.PENDING,
        applied_at=now,
        created_at=now,
        updated_at=now,
    )
    _apply(demand, body)
    session.add(demand)
    await session.flush()
    await notifications.add(
        session, notices.demand_submitted(demand.id, demand.demand_no, demand.name, demand.org_name)
    )
    return demand


async def edit(session: AsyncSession, demand: Demand, org: OrgView, body: DemandIn) -> Demand:
    """修改: a pending one stays pending, a returned one goes back to review (a new 申请时间)."""
    _check(body)
    try:
        demand.status = rules.after_edit(demand.status)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    _apply(demand, body)
    demand.org_name = org.name
    demand.review_reason = None
    demand.applied_at = demand.updated_at = utcnow()
    session.add(demand)
    await notifications.add(
        session, notices.demand_submitted(demand.id, demand.demand_no, demand.name, demand.org_name)
    )
    return demand


async def close(session: AsyncSession, demand: Demand) -> Demand:
    try:
        demand.status = rules.after_close(demand.status)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    demand.closed_at = demand.updated_at = utcnow()
    session.add(demand)
    return demand


async def open_for_review(session: AsyncSession, demand: Demand, reviewer: Principal) -> Demand:
    """A reviewer opening a pending demand makes it 待审核 (the enterprise sees it is being read)."""
    status = rules.after_open_by_reviewer(demand.status)
    if status != demand.status:
        demand.status = status
        demand.updated_at = utcnow()
        session.add(demand)
        audit(session, reviewer, "demand.open", "demand", demand.id)
    return demand


async def decide(
    session: AsyncSession, demand: Demand, reviewer: Principal, decision: str, reason: str | None
) -> Demand:
    try:
        demand.status = rules.after_decision(demand.status, decision, reason)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    now = utcnow()
    demand.review_reason = reason or None
    demand.reviewed_at = demand.updated_at = now
    if demand.status == rules.Status.PUBLISHED:
        demand.published_at = now
    session.add(demand)
    audit(
        session,
        reviewer,
        f"demand.{decision}",
        "demand",
        demand.id,
        reason=reason,
        demand_no=demand.demand_no,
    )
    await notifications.add(
        session,
        notices.demand_decided(demand.id, demand.demand_no, demand.name, demand.org_id, decision, reason),
    )
    return demand


async def respond(
    session: AsyncSession, demand: Demand, principal: Principal, org: OrgView, body: ResponseIn
) -> DemandResponse:
    """我要对接, once per provider: the unique index decides a race of two members' clicks."""
    try:
        rules.check_response(status=demand.status, demand_org_id=demand.org_id, responder_org_id=org.org_id)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    now = utcnow()
    row = DemandResponse(
        demand_id=demand.id,
        provider_id=org.org_id,
        provider_name=org.name,
        user_id=principal.user_id,
        contact_name=body.contact_name,
        phone=body.phone,
        message=body.message,
        created_at=now,
    )
    inserted = await session.execute(
        pg_insert(DemandResponse)
        .values(**row.model_dump())
        .on_conflict_do_nothing(constraint="uq_demand_responses_once")
        .returning(col(DemandResponse.id))
    )
    if inserted.scalar_one_or_none() is None:
        raise errors.already_responded()
    await session.execute(
        update(Demand).where(col(Demand.id) == demand.id).values(response_count=Demand.response_count + 1)
    )
    await notifications.add(
        session, notices.demand_responded(demand.id, demand.demand_no, demand.name, demand.org_id, org.name)
    )
    return row
