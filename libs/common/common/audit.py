"""Every staff decision, kept by the service that made it: who, when, what, why.

Each service writes its ``audit_log`` in the decision's own transaction (:func:`audit`) and
serves it to the gateway on ``GET /internal/audit-log`` (:func:`internal_audit_router`,
answering the contract ``common.reads.AuditFeed``); the gateway composes them into
``GET /api/v1/admin/audit-log``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import BigInteger, Column, DateTime, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import InternalCaller, Principal
from common.datetimes import Moment
from common.reads import AuditFeed, AuditRecord


class AuditEntry(SQLModel, table=True):
    """A staff decision: who, when, what, why."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    )
    actor_id: str = Field(max_length=36)
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=60, index=True)
    target_type: str = Field(max_length=40)
    target_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    details: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )


def create_audit_schema(bind: Connection) -> None:
    AuditEntry.__table__.create(bind=bind, checkfirst=True)  # type: ignore[attr-defined]


def audit(
    session: AsyncSession,
    actor: Principal,
    action: str,
    target_type: str,
    target_id: str,
    *,
    reason: str | None = None,
    **details: Any,
) -> None:
    """Record a decision in the caller's transaction."""
    session.add(
        AuditEntry(
            actor_id=actor.user_id,
            actor_role=actor.role,
            action=action,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            details=details,
        )
    )


SYSTEM = Principal(user_id="system", role="system")
CONFLICT_PREFIX = "conflict."


def conflict(
    session: AsyncSession, kind: str, target_type: str, target_id: str, *, reason: str, **details: Any
) -> None:
    """A money event this service cannot apply as it should (a payout for a reversed deduction,
    a completion after an accepted termination): never acknowledged and forgotten, but kept in
    the audit log as ``conflict.<kind>`` in the handler's transaction, where staff see it (the
    composed audit log), ``/metrics`` counts it (``voucher_money_conflicts``) and
    ``voucher-invariants`` reports it."""
    audit(session, SYSTEM, CONFLICT_PREFIX + kind, target_type, target_id, reason=reason, **details)


def audit_out(row: AuditEntry, service: str) -> AuditRecord:
    """One entry as staff read it, named with the service that wrote it."""
    return AuditRecord.model_validate(row, from_attributes=True).model_copy(update={"service": service})


def audit_conditions(
    actor: str | None, action: str | None, since: datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if actor:
        conditions.append(col(AuditEntry.actor_id) == actor)
    if action:
        conditions.append(col(AuditEntry.action) == action)
    if since is not None:
        conditions.append(col(AuditEntry.at) >= since)
    return conditions


async def audit_feed(
    session: AsyncSession,
    service: str,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> AuditFeed:
    rows = (
        await session.exec(
            select(AuditEntry)
            .where(*audit_conditions(actor, action, since))
            .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
            .limit(limit)
        )
    ).all()
    return AuditFeed(items=[audit_out(r, service) for r in rows])


def internal_audit_router(service: str) -> APIRouter:
    """``GET /internal/audit-log`` for the gateway's composed staff view."""
    # common.app imports this module's neighbours, so its dependency comes in late. It goes
    # in as a default value: an annotation naming a local would not resolve (postponed
    # annotations), and FastAPI would take ``session`` for a required query parameter, which
    # is how every service's feed answered 422 and the gateway listed them all as stale.
    from common.app import get_session

    router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)

    @router.get("/audit-log", response_model=AuditFeed)
    async def internal_audit_log(
        _caller: InternalCaller,
        session: AsyncSession = Depends(get_session),
        since: Moment | None = None,
        actor: Annotated[str | None, Query(max_length=36)] = None,
        action: Annotated[str | None, Query(max_length=60)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> AuditFeed:
        return await audit_feed(session, service, actor=actor, action=action, since=since, limit=limit)

    return router
