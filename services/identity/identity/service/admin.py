"""Staff decisions on a session: organisations searched, suspended and restored, staff
accounts created and changed. Each decision is locked, audited (``common.audit``) and, where
other services must know, published through the outbox; never committed here."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from common.audit import audit
from common.auth import Principal
from common.bus import emit
from common.db import escape_like
from common.events import OrganizationRestored, OrganizationSuspended
from common.masking import mask_phone
from common.rules import Refusal
from common.timers import utcnow
from identity import errors
from identity.context import IdentityContext
from identity.domain import admin as domain
from identity.domain import auth as auth_domain
from identity.models import Organization, User
from identity.schemas.admin import StaffIn, StaffUpdateIn
from identity.service import auth as auth_service
from identity.service.organizations import load_org

# --- organisations -----------------------------------------------------------------------------


def organizations_query(
    q: str | None, capability: Literal["enterprise", "provider"] | None, suspended: bool | None
) -> SelectOfScalar[Organization]:
    """The organisations staff look for, by name or USCC (a wildcard typed is a character
    searched for), capability and suspension; newest first."""
    conditions = []
    if q and q.strip():
        pattern = f"%{escape_like(q.strip())}%"
        conditions.append(
            or_(
                col(Organization.name).ilike(pattern, escape="\\"),
                col(Organization.uscc).ilike(pattern, escape="\\"),
            )
        )
    if capability == "enterprise":
        conditions.append(col(Organization.certified_at).is_not(None))
    elif capability == "provider":
        conditions.append(col(Organization.is_provider).is_(True))
    if suspended is not None:
        conditions.append(col(Organization.suspended).is_(suspended))
    return (
        select(Organization)
        .where(*conditions)
        .order_by(col(Organization.created_at).desc(), col(Organization.id))
    )


async def organization(session: AsyncSession, org_id: str) -> Organization:
    org = await load_org(session, org_id)
    if org is None:
        raise errors.organization_not_found()
    return org


async def decide_suspension(
    session: AsyncSession, admin: Principal, org_id: str, reason: str, *, suspend: bool
) -> Organization:
    """Suspend (or restore) the organisation under its lock: announced
    (``organization_suspended`` / ``organization_restored``) and audited."""
    org = await load_org(session, org_id, lock=True)
    if org is None:
        raise errors.organization_not_found()
    if suspend and org.suspended:
        raise errors.already_suspended()
    if not suspend and not org.suspended:
        raise errors.not_suspended()
    now = utcnow()
    org.suspended = suspend
    org.suspended_reason = reason if suspend else None
    org.suspended_at = now if suspend else None
    org.updated_at = now
    session.add(org)
    event = (
        OrganizationSuspended(org_id=org.id, reason=reason)
        if suspend
        else OrganizationRestored(org_id=org.id, reason=reason)
    )
    await emit(session, event, aggregate_id=org.id)
    audit(
        session,
        admin,
        "organization.suspended" if suspend else "organization.restored",
        "organization",
        org.id,
        reason=reason,
        name=org.name,
        uscc=org.uscc,
    )
    return org


# --- staff accounts ----------------------------------------------------------------------------


def staff_query(active: bool | None) -> SelectOfScalar[User]:
    conditions = [col(User.role).in_(auth_domain.STAFF_ROLES)]
    if active is not None:
        conditions.append(col(User.active).is_(active))
    return select(User).where(*conditions).order_by(col(User.created_at).desc(), col(User.id))


async def create_staff(session: AsyncSession, ctx: IdentityContext, admin: Principal, body: StaffIn) -> User:
    """A staff account (with a password, or none: set with 忘记密码); audited, the phone
    masked. The unique index on active phones decides a race for one phone."""
    password_hash = None
    if body.password is not None:
        await auth_service.require_strong(body.password, body.phone, [body.name], field="password")
        password_hash = await auth_service.hash_password(ctx, body.password)
    if await auth_service.active_user_by_phone(session, body.phone) is not None:
        raise errors.phone_taken()
    user = User(
        phone=body.phone,
        name=body.name,
        role=body.role,
        password_hash=password_hash,
        created_by=admin.user_id,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise errors.phone_taken() from None
    audit(
        session,
        admin,
        "staff.created",
        "user",
        user.id,
        name=body.name,
        phone=mask_phone(body.phone),
        role=body.role,
    )
    return user


async def update_staff(session: AsyncSession, admin: Principal, user_id: str, body: StaffUpdateIn) -> User:
    """Rename, change the role of, or (de)activate a staff account under its lock. A
    deactivated account's sessions end, and a changed role or a deactivation takes the
    account's access tokens away everywhere; audited with what changed (nothing changed:
    nothing written)."""
    user = (
        await session.exec(
            select(User)
            .where(User.id == user_id, col(User.role).in_(auth_domain.STAFF_ROLES))
            .with_for_update()
        )
    ).first()
    if user is None:
        raise errors.staff_not_found()
    try:
        domain.check_own_change(actor_id=admin.user_id, target_id=user.id, role=body.role, active=body.active)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    changes = domain.staff_changes(
        {"name": user.name, "role": user.role, "active": user.active},
        {"name": body.name, "role": body.role, "active": body.active},
    )
    if not changes:
        return user
    for field, (_old, new) in changes.items():
        setattr(user, field, new)
    session.add(user)
    try:
        await session.flush()  # reactivating a phone someone else now uses
    except IntegrityError:
        await session.rollback()
        raise errors.phone_taken() from None
    if changes.get("active") == [True, False]:
        await auth_service.revoke_user_sessions(session, user.id)
        await auth_service.take_access_away(session, user.id, None, auth_service.DEACTIVATED)
    elif "role" in changes:
        # The session goes on: its next token (refresh) carries the new role, the old ones stop.
        await auth_service.take_access_away(session, user.id, None, auth_service.ROLE_CHANGED)
    audit(session, admin, "staff.updated", "user", user.id, changes=changes)
    return user
