"""Small stateful helpers of the organisation, verification, file and staff routes.

Access is always decided on identity's own rows (the user, its organisation), never on the
claims of the caller's token: a token lives 15 minutes, a suspension takes effect at once.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import MEMBER_ROLES, Principal
from common.masking import mask_account_number, mask_phone
from identity import errors
from identity.models import BankAccount, Organization, User
from identity.schemas.organizations import AgentOut, BankAccountOut
from identity.service import auth as service


async def active_user(session: AsyncSession, principal: Principal) -> User:
    user = await session.get(User, principal.user_id)
    if user is None or not user.active:
        raise errors.account_gone()
    return user


async def load_org(session: AsyncSession, org_id: str, *, lock: bool = False) -> Organization | None:
    """The organisation row; ``lock`` takes it FOR UPDATE (and refreshes what the session had)."""
    stmt = select(Organization).where(Organization.id == org_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.exec(stmt)).first()


async def member(
    session: AsyncSession, principal: Principal, *, lock: bool = False
) -> tuple[User, Organization]:
    """The caller (owner or agent) and their organisation, or a problem."""
    user = await active_user(session, principal)
    if user.role not in MEMBER_ROLES or user.organization_id is None:
        raise errors.organization_not_found()
    org = await load_org(session, user.organization_id, lock=lock)
    if org is None:
        raise errors.organization_not_found()
    return user, org


async def owner(
    session: AsyncSession,
    principal: Principal,
    *,
    certified: bool = True,
    not_suspended: bool = True,
    lock: bool = False,
) -> tuple[User, Organization]:
    """The caller as the owner of their organisation, which (by default) is certified and not
    suspended: what starting anything new on the organisation requires."""
    user, org = await member(session, principal, lock=lock)
    if user.role != "owner":
        raise errors.owner_required()
    if not_suspended and org.suspended:
        raise errors.organization_suspended(org.suspended_reason)
    if certified and not org.certified:
        raise errors.certification_required()
    return user, org


async def current_agent(session: AsyncSession, org_id: str) -> User | None:
    return (
        await session.exec(
            select(User)
            .where(User.organization_id == org_id, User.role == "agent", col(User.active).is_(True))
            .order_by(col(User.created_at).desc())
        )
    ).first()


async def has_bank_account(session: AsyncSession, org_id: str) -> bool:
    return await session.get(BankAccount, org_id) is not None


def agent_out(user: User) -> AgentOut:
    return AgentOut(
        id=user.id,
        name=user.name,
        phone=mask_phone(user.phone),
        id_type=user.id_type,
        id_number=user.id_number_masked,
        created_at=user.created_at,
    )


def bank_account_out(row: BankAccount) -> BankAccountOut:
    return BankAccountOut(
        account_name=row.account_name,
        bank_name=row.bank_name,
        bank_region=row.bank_region,
        branch_name=row.branch_name,
        account_number=row.account_number,
        account_number_masked=mask_account_number(row.account_number),
        updated_at=row.updated_at,
    )


async def uscc_holder(session: AsyncSession, uscc: str) -> Organization | None:
    return (await session.exec(select(Organization).where(Organization.uscc == uscc))).first()


async def deactivate(session: AsyncSession, user: User, change: str = service.DEACTIVATED) -> None:
    """The account can no longer sign in; its sessions and (within seconds, everywhere) its
    access tokens end now: ``change`` says why (``agent_removed`` for a replaced or removed
    agent)."""
    await service.lock_user(session, user.id)
    user.active = False
    session.add(user)
    await session.flush()
    await service.revoke_user_sessions(session, user.id)
    await service.take_access_away(session, user.id, user.organization_id, change)
