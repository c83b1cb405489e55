"""A service's own copy of the organisations it deals with, kept from identity's events.

DESIGN.md: sensitive actions check the service's own copy of the organisation's status
(certified, provider, suspended), not only the token's claims (a token lives 15 minutes; a
suspension takes effect at once). Every service that needs it creates the ``org_copies``
table in its first migration (:func:`create_org_copy_schema`) and calls
:func:`register_org_handlers` on its consumer; the registry lists the events
(``common.registry.ORG_FACTS``).

Each fact is ordered on its own stream of the ordering guard: certification and provider
onboarding only ever switch on; suspension and restoration follow one another, and a late
``suspended`` never undoes a newer ``restored``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Text, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import Principal
from common.bus.consumer import Consumer
from common.bus.ordering import ordered
from common.db import lock
from common.errors import Problem
from common.events import (
    Envelope,
    OrganizationCertified,
    OrganizationRestored,
    OrganizationSuspended,
    ProviderApproved,
)


class OrgCopy(SQLModel, table=True):
    __tablename__ = "org_copies"

    org_id: str = Field(primary_key=True, max_length=36)
    name: str = Field(default="", max_length=200)
    uscc: str | None = Field(default=None, max_length=18)
    kind: str | None = Field(default=None, max_length=20)
    certified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    provider: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    suspended: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    suspended_reason: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime | None = Field(
        default=None,
        sa_column=Column(
            DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
        ),
    )


def create_org_copy_schema(bind: Connection) -> None:
    OrgCopy.__table__.create(bind=bind, checkfirst=True)  # type: ignore[attr-defined]


async def _locked(session: AsyncSession, org_id: str) -> OrgCopy:
    await session.execute(pg_insert(OrgCopy).values(org_id=org_id).on_conflict_do_nothing())
    row = await lock(session, OrgCopy, org_id)
    assert row is not None
    return row


def register_org_handlers(consumer: Consumer) -> None:
    """The four org facts (certified, provider approved, suspended, restored) on ``consumer``."""

    @consumer.on(OrganizationCertified.event_type)
    async def certified(session: AsyncSession, event: Envelope[Any]) -> None:
        p: OrganizationCertified = event.payload
        org = await _locked(session, p.org_id)
        if not await ordered(session, consumer.name, event, stream="certified"):
            return
        org.name, org.uscc, org.kind, org.certified = p.name, p.uscc, p.kind, True
        session.add(org)

    @consumer.on(ProviderApproved.event_type)
    async def provider(session: AsyncSession, event: Envelope[Any]) -> None:
        p: ProviderApproved = event.payload
        org = await _locked(session, p.org_id)
        org.provider = True
        org.name = org.name or p.name
        session.add(org)

    async def suspension(session: AsyncSession, event: Envelope[Any], suspended: bool) -> None:
        p: OrganizationSuspended | OrganizationRestored = event.payload
        org = await _locked(session, p.org_id)
        if not await ordered(session, consumer.name, event, stream="suspension"):
            return  # a newer suspension or restoration is already reflected
        org.suspended = suspended
        org.suspended_reason = p.reason if suspended else None
        session.add(org)

    @consumer.on(OrganizationSuspended.event_type)
    async def suspended(session: AsyncSession, event: Envelope[Any]) -> None:
        await suspension(session, event, True)

    @consumer.on(OrganizationRestored.event_type)
    async def restored(session: AsyncSession, event: Envelope[Any]) -> None:
        await suspension(session, event, False)


async def org_copy(session: AsyncSession, org_id: str | None) -> OrgCopy | None:
    if not org_id:
        return None
    return await session.get(OrgCopy, org_id)


def organization_suspended() -> Problem:
    return Problem(403, "organization_suspended", "贵单位已被平台暂停使用，暂不能办理新的业务，请联系平台")


async def require_active(session: AsyncSession, principal: Principal) -> OrgCopy | None:
    """Refuse a member of a suspended organisation (by this service's own copy); returns the
    copy (None while identity's events have not arrived: the token's claims then stand)."""
    org = await org_copy(session, principal.org_id)
    if org is not None and org.suspended:
        raise organization_suspended()
    return org


async def is_suspended(session: AsyncSession, org_id: str | None) -> bool:
    org = await org_copy(session, org_id)
    return bool(org and org.suspended)
