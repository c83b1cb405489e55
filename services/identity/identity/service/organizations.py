"""The caller's organisation on a session: who is a member or the owner, 企业信息认证, the
agent (经办人) and the bank account (支付认证). Never commits (the route commits once).

Access is always decided on identity's own rows (the user, its organisation), never on the
claims of the caller's token: a token lives 15 minutes, a suspension takes effect at once.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.auth import MEMBER_ROLES, Principal
from common.bus import emit
from common.events import BankAccountChanged, OrganizationCertified
from common.idnumbers import InvalidNumber, validate_id_number
from common.masking import mask_account_number, mask_id_number, mask_phone
from common.timers import utcnow
from identity import errors
from identity.context import IdentityContext
from identity.domain import organizations as domain
from identity.domain import reference as reference_domain
from identity.models import BankAccount, Organization, User
from identity.schemas.organizations import AgentIn, AgentOut, BankAccountIn, BankAccountOut, CertificationIn
from identity.service import auth as service
from identity.service.reference import reference


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


# --- 企业信息认证 ------------------------------------------------------------------------------------


def certifiable(user: User, org: Organization, body: CertificationIn) -> domain.CertificationNumbers:
    """The certification's numbers in stored form, when the caller (the owner) may certify
    the organisation with them: every field error at once, then a suspension, then a
    certification already made. Asked before the SMS code is spent."""
    if user.role != "owner":
        raise errors.owner_required()
    numbers, bad = domain.certification_errors(
        agreed=body.agreed,
        uscc=body.uscc,
        id_type=body.legal_rep_id_type,
        id_number=body.legal_rep_id_number,
    )
    if bad or numbers is None:
        raise errors.invalid(bad, domain.errors_detail(bad))
    if org.suspended:
        raise errors.organization_suspended(org.suspended_reason)
    if org.certified:
        raise errors.already_certified()
    return numbers


async def certify(
    session: AsyncSession,
    ctx: IdentityContext,
    org: Organization,
    body: CertificationIn,
    numbers: domain.CertificationNumbers,
) -> Organization:
    """Certify the (locked) organisation once the enterprise register agrees: its name, USCC,
    kind and legal representative (the ID number encrypted) written and
    ``organization_certified`` announced. One USCC certifies one organisation: the partial
    unique index decides a race. A refusal rolls the session back (nothing is kept)."""
    if await uscc_holder(session, numbers.uscc) is not None:
        await session.rollback()
        raise errors.uscc_taken()
    check = await ctx.enterprise_verifier.verify(
        name=body.name,
        uscc=numbers.uscc,
        legal_rep_name=body.legal_rep_name,
        id_type=body.legal_rep_id_type,
        id_number=numbers.legal_rep_id_number,
    )
    if not check.ok:
        await session.rollback()
        reason = check.reason or "企业信息与登记信息不一致"
        raise errors.enterprise_verification_failed(reason, check.fields)
    now = utcnow()
    org.name = body.name
    org.uscc = numbers.uscc
    org.kind = body.role
    org.certified_at = now
    org.legal_rep_name = body.legal_rep_name
    org.legal_rep_id_type = body.legal_rep_id_type
    org.legal_rep_id_enc = ctx.cipher.encrypt(
        numbers.legal_rep_id_number, context=domain.LEGAL_REP_ID_CONTEXT
    )
    org.legal_rep_id_masked = mask_id_number(numbers.legal_rep_id_number)
    org.updated_at = now
    session.add(org)
    try:
        await session.flush()  # the partial unique index decides a race for one USCC
    except IntegrityError:
        await session.rollback()
        raise errors.uscc_taken() from None
    await emit(
        session,
        OrganizationCertified(org_id=org.id, name=org.name, uscc=numbers.uscc, kind=body.role),
        aggregate_id=org.id,
    )
    return org


# --- the agent (经办人) ---------------------------------------------------------------------------


async def agent(session: AsyncSession, org: Organization) -> User:
    """The organisation's current agent, or ``agent_not_set``."""
    found = await current_agent(session, org.id)
    if found is None:
        raise errors.agent_not_set()
    return found


async def designate_agent(
    session: AsyncSession, ctx: IdentityContext, owner: User, org: Organization, body: AgentIn
) -> User:
    """The owner designates (or corrects) the agent of the (locked) organisation. The same
    phone: the person's details corrected, their sessions go on. Another phone: the previous
    agent is deactivated (access taken away) and a new account made for the phone, which no
    active account may hold (the unique index on active phones decides a race)."""
    bad: list[dict[str, str]] = []
    id_number = ""
    try:
        id_number = validate_id_number(body.id_type, body.id_number, field="id_number")
    except InvalidNumber as exc:
        bad.append(domain.field_error(exc))
    if refusal := domain.agent_phone_refusal(body.phone, owner.phone):
        bad.append(domain.field_error(refusal))
    if bad:
        raise errors.invalid(bad, domain.errors_detail(bad))
    id_enc = ctx.cipher.encrypt(id_number, context=domain.AGENT_ID_CONTEXT)
    id_masked = mask_id_number(id_number)
    previous = await current_agent(session, org.id)
    if previous is not None and previous.phone == body.phone:
        designated = previous  # the same person's details corrected: their sessions go on
        designated.name = body.name
    else:
        if await service.active_user_by_phone(session, body.phone) is not None:
            raise errors.phone_taken()
        if previous is not None:
            await deactivate(session, previous, service.AGENT_REMOVED)
        designated = User(
            phone=body.phone,
            name=body.name,
            role="agent",
            organization_id=org.id,
            created_by=owner.id,
        )
    designated.id_type = body.id_type
    designated.id_number_enc = id_enc
    designated.id_number_masked = id_masked
    session.add(designated)
    try:
        await session.flush()  # the unique index on active phones decides a race
    except IntegrityError:
        await session.rollback()
        raise errors.phone_taken() from None
    return designated


async def remove_agent(session: AsyncSession, org: Organization) -> None:
    """The agent's account is deactivated: its sessions end, its access is taken away."""
    await deactivate(session, await agent(session, org), service.AGENT_REMOVED)


# --- the bank account (支付认证) -------------------------------------------------------------------


async def bank_account(session: AsyncSession, org: Organization) -> BankAccount:
    row = await session.get(BankAccount, org.id)
    if row is None:
        raise errors.bank_account_not_set()
    return row


async def save_bank_account(
    session: AsyncSession, owner: User, org: Organization, body: BankAccountIn
) -> BankAccount:
    """The (locked) organisation's bank account, checked against its certified name and the
    reference data and saved as the reference data spells the region and branch;
    ``bank_account_changed`` announced when something changed (nothing changed: nothing
    written)."""
    number = domain.normalize_account_number(body.account_number)
    bad: list[dict[str, str]] = []
    if refusal := domain.account_name_refusal(body.account_name, org.name):
        bad.append(domain.field_error(refusal))
    if refusal := domain.account_number_refusal(number):
        bad.append(domain.field_error(refusal))
    choice, wrong = reference_domain.bank_reference_errors(
        reference(), bank_name=body.bank_name, bank_region=body.bank_region, branch_name=body.branch_name
    )
    bad.extend(wrong)
    if bad or choice is None:
        raise errors.invalid(bad, domain.errors_detail(bad))
    values = {  # the region and branch as the reference data spells them
        "account_name": body.account_name,
        "bank_name": choice.branch.bank,
        "bank_region": choice.region.full_name,
        "branch_name": choice.branch.name,
        "account_number": number,
    }
    row = await session.get(BankAccount, org.id)
    if row is not None and all(getattr(row, k) == v for k, v in values.items()):
        return row  # nothing changed: no event either
    row = row or BankAccount.model_validate({"organization_id": org.id, **values})
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    row.updated_by = owner.id
    session.add(row)
    await session.flush()
    await emit(session, BankAccountChanged(org_id=org.id, **values), aggregate_id=org.id)
    return row
