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

A copy may lag: the events are in flight when a user certifies and acts at once. DESIGN.md: a
copy that is missing or older than the caller's token is never a reason to decide
differently. So a request reads its caller's organisation through :func:`current_org` (or
:func:`require_active`): the copy when it is at least as new as the token (it has every
capability the token names), else identity's ``GET /internal/organizations/{id}`` at request
time, which also refreshes the copy; when identity cannot be asked, a retryable 409
(``organization_syncing``) and nothing is decided. Event handlers never call identity (no
synchronous call may be needed for a saga to finish).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Boolean, Column, DateTime, Text, case, func, or_, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import Principal, unauthenticated
from common.bus.consumer import Consumer
from common.bus.ordering import ordered
from common.db import lock
from common.errors import Problem
from common.errors import organization_suspended as organization_suspended
from common.errors import organization_syncing as organization_syncing
from common.events import (
    Envelope,
    OrganizationCertified,
    OrganizationRestored,
    OrganizationSuspended,
    ProviderApproved,
)
from common.internal import ServiceClients
from common.reads import OrganizationFacts

log = structlog.get_logger(__name__)


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
    """This service's copy as it stands (it may lag): for showing, never for deciding about a
    caller (:func:`current_org`)."""
    if not org_id:
        return None
    return await session.get(OrgCopy, org_id)


@dataclass(frozen=True)
class OrgView:
    """An organisation's facts as a request may decide on them."""

    org_id: str
    name: str
    uscc: str | None
    kind: str | None
    certified: bool
    provider: bool
    suspended: bool
    suspended_reason: str | None = None

    @classmethod
    def of(cls, copy: OrgCopy) -> OrgView:
        return cls(
            org_id=copy.org_id,
            name=copy.name,
            uscc=copy.uscc,
            kind=copy.kind,
            certified=copy.certified,
            provider=copy.provider,
            suspended=copy.suspended,
            suspended_reason=copy.suspended_reason,
        )


def behind(copy: OrgCopy | None, principal: Principal) -> bool:
    """Is the copy missing, or older than the caller's token (a capability the token names
    that the copy does not have yet)?"""
    if copy is None:
        return True
    return (principal.can("enterprise") and not copy.certified) or (
        principal.can("provider") and not copy.provider
    )


async def read_identity(clients: ServiceClients, org_id: str) -> OrgView | None:
    """identity's answer now (None: identity does not know the organisation); a 409
    ``organization_syncing`` when identity cannot answer."""
    try:
        facts = await clients.read("identity", f"/internal/organizations/{org_id}", OrganizationFacts)
    except Problem as exc:
        log.warning("organization_read_failed", org_id=org_id, code=exc.code)
        raise organization_syncing() from exc
    if facts is None:
        return None
    return OrgView(
        org_id=org_id,
        name=facts.name,
        uscc=facts.uscc,
        kind=facts.kind,
        certified=facts.certified,
        provider=facts.provider,
        suspended=facts.suspended,
        suspended_reason=facts.suspended_reason,
    )


async def refresh_copy_and_commit(session: AsyncSession, view: OrgView) -> None:
    """Bring the copy up to identity's answer on a connection of its own, committed at once.

    Not in the request's transaction: that would hold the copy's row lock until the request
    commits, and every other request of the organisation (or naming it) would queue behind
    it, internal reads and all. Best effort: the request decides on identity's answer
    whether or not the copy could be written (a failure is logged; the events fill it).

    Certification and onboarding only ever switch on, so they are merged in (OR). Suspension
    is left to the events once the copy exists: an event applied between identity's answer
    and this write may be newer than the answer, and the ordering guard keeps the events
    right; a copy made here starts from identity's answer.
    """
    table = OrgCopy.__table__  # type: ignore[attr-defined]
    insert = pg_insert(OrgCopy).values(
        org_id=view.org_id,
        name=view.name,
        uscc=view.uscc,
        kind=view.kind,
        certified=view.certified,
        provider=view.provider,
        suspended=view.suspended,
        suspended_reason=view.suspended_reason,
    )
    new = insert.excluded
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.org_id],
        set_={
            "name": case((or_(new.certified, table.c.name == ""), new.name), else_=table.c.name),
            "uscc": func.coalesce(new.uscc, table.c.uscc),
            "kind": func.coalesce(new.kind, table.c.kind),
            "certified": or_(table.c.certified, new.certified),
            "provider": or_(table.c.provider, new.provider),
            "updated_at": func.now(),
        },
    )
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        return
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            await conn.execute(upsert)
    except SQLAlchemyError as exc:
        log.warning("org_copy_refresh_failed", org_id=view.org_id, error=type(exc).__name__)


async def current_org(
    session: AsyncSession,
    principal: Principal,
    clients: ServiceClients | None,
    *,
    let_go: bool = False,
) -> OrgView | None:
    """The caller's organisation as it is now (None for a caller without one: staff).

    The copy when it is as new as the caller's token; else identity's answer at request time
    (and the copy refreshed with it, committed apart). A 409 ``organization_syncing``
    when the copy is behind and identity cannot be asked (``clients`` None) or cannot answer;
    a 401 when identity does not know the organisation the token names (sign in again).

    ``let_go``: the caller has written and locked nothing yet, so the session is rolled back
    before identity is asked (its connection goes back to the pool instead of waiting in an
    open transaction on identity: CONTRIBUTING's rule of a transaction). Ask this way first,
    then lock and decide.
    """
    if not principal.org_id:
        return None
    copy = await session.get(OrgCopy, principal.org_id)
    if copy is not None and not behind(copy, principal):
        return OrgView.of(copy)
    if clients is None:
        raise organization_syncing()
    if let_go:
        await session.rollback()
    view = await read_identity(clients, principal.org_id)
    if view is None:
        log.warning("organization_unknown_to_identity", org_id=principal.org_id)
        raise unauthenticated("登录凭证无效，请重新登录", "token_invalid")
    await refresh_copy_and_commit(session, view)
    return view


async def require_active(
    session: AsyncSession,
    principal: Principal,
    clients: ServiceClients | None = None,
    *,
    let_go: bool = False,
) -> OrgView | None:
    """Refuse a member of a suspended organisation; returns the organisation as it is now
    (:func:`current_org`: without ``clients``, a copy behind the token is a 409; ``let_go``
    as there)."""
    org = await current_org(session, principal, clients, let_go=let_go)
    if org is not None and org.suspended:
        raise organization_suspended()
    return org


async def has_receiving_account(clients: ServiceClients, org_id: str) -> bool:
    """Has the organisation a receiving bank account (支付认证) on file, asked of identity at the
    moment of the request (no service keeps a copy: the account is identity's and payments'
    alone). A 409 ``organization_syncing`` when identity cannot answer; False when it does not
    know the organisation."""
    try:
        facts = await clients.read("identity", f"/internal/organizations/{org_id}", OrganizationFacts)
    except Problem as exc:
        log.warning("organization_read_failed", org_id=org_id, code=exc.code)
        raise organization_syncing() from exc
    return facts is not None and facts.bank_account


async def is_suspended(
    session: AsyncSession,
    org_id: str | None,
    clients: ServiceClients | None = None,
    *,
    let_go: bool = False,
) -> bool:
    """Is another organisation (a counterparty) suspended? By this service's copy; when there
    is no copy and ``clients`` is given, by identity (an organisation identity does not know
    is not suspended). Without ``clients`` a missing copy counts as not suspended: for
    showing, or where the caller has checked another way. ``let_go`` as in
    :func:`current_org`: the session is rolled back before identity is asked."""
    org = await org_copy(session, org_id)
    if org is not None or clients is None or not org_id:
        return bool(org and org.suspended)
    if let_go:
        await session.rollback()
    view = await read_identity(clients, org_id)
    if view is None:
        return False
    await refresh_copy_and_commit(session, view)
    return view.suspended
