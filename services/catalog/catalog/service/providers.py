"""Provider onboarding (申请入驻平台) and the provider's profile (服务机构信息)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalog import errors
from catalog.domain import providers as rules
from catalog.models import Provider, ProviderApplication
from catalog.schemas.providers import ProviderApplicationIn, ProviderProfileIn
from catalog.service import products
from common import bus
from common.audit import audit
from common.auth import Principal
from common.events import ProviderApplicationRejected, ProviderApproved
from common.internal import ServiceClients
from common.orgs import OrgView, has_receiving_account
from common.timers import utcnow


async def latest_application(session: AsyncSession, org_id: str) -> ProviderApplication | None:
    query = (
        select(ProviderApplication)
        .where(col(ProviderApplication.org_id) == org_id)
        .order_by(col(ProviderApplication.created_at).desc(), col(ProviderApplication.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


def check_categories(categories: list[str]) -> list[str]:
    if rules.unknown_categories(categories):
        raise errors.unknown_category("categories")
    return list(dict.fromkeys(categories))  # duplicates dropped, order kept


async def apply(
    session: AsyncSession, principal: Principal, body: ProviderApplicationIn, org: OrgView | None
) -> ProviderApplication:
    """A certified organisation's application; the proof files were checked by the caller,
    ``org`` is the organisation as it is now (common.orgs.require_active).

    Serialised per organisation by the partial unique index on its pending application:
    two concurrent submissions cannot both be pending.
    """
    assert principal.org_id is not None
    categories = check_categories(body.categories)
    provider = await session.get(Provider, principal.org_id)
    latest = await latest_application(session, principal.org_id)
    refusal = rules.may_apply(latest.state if latest else None, is_provider=provider is not None)
    if refusal == "already_provider":
        raise errors.already_provider()
    if refusal == "application_pending":
        raise errors.application_pending()
    name = (org.name if org else None) or body.name or ""
    application = ProviderApplication(
        org_id=principal.org_id,
        org_name=name,
        applicant_id=principal.user_id,
        profile=body.profile,
        categories=categories,
        contact_name=body.contact_name,
        contact_phone=body.contact_phone,
        address=body.address,
        working_hours=body.working_hours,
        proof_file_ids=list(body.proof_file_ids),
    )
    session.add(application)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # the pending-index race: a concurrent submission won
        raise errors.application_pending() from exc
    return application


async def check_receiving_account(
    session: AsyncSession, clients: ServiceClients, application_id: str
) -> None:
    """Before an application is approved, and before it is locked: the applicant has a
    receiving account on file (a provider is paid by transfer into it), as identity says now.

    The application is read (a 404 first, as ever) and the session's connection let go
    before identity is asked: nothing is written or locked yet. Asked under the
    application's lock, a slow identity held the lock (every other decision on it waited)
    and a connection in an open transaction. The state is decided afterwards under the lock
    (:func:`approve`): decided meanwhile, a 409."""
    application = await session.get(ProviderApplication, application_id)
    if application is None:
        raise errors.application_not_found()
    org_id = application.org_id
    await session.rollback()
    if not await has_receiving_account(clients, org_id):
        raise errors.provider_bank_account_missing()


async def approve(
    session: AsyncSession, reviewer: Principal, application: ProviderApplication, reason: str | None
) -> Provider:
    """Approve a pending application (locked by the caller): the organisation becomes a
    provider with the application's profile; ``catalog.provider_approved`` tells identity
    (which adds the provider capability) and every service keeping organisation copies."""
    if not rules.may_decide(application.state):
        raise errors.application_not_pending()
    application.state = rules.AppState.APPROVED
    application.decided_by = reviewer.user_id
    application.decided_at = utcnow()
    application.reject_reason = None
    session.add(application)
    provider = await session.get(Provider, application.org_id)
    if provider is None:
        provider = Provider(org_id=application.org_id)
    provider.name = application.org_name or provider.name
    provider.profile = application.profile
    provider.categories = list(application.categories)
    provider.contact_name = application.contact_name
    provider.contact_phone = application.contact_phone
    provider.address = application.address
    provider.working_hours = application.working_hours
    provider.application_id = application.id
    provider.updated_at = utcnow()
    session.add(provider)
    await session.flush()
    await products.provider_changed(session, provider)  # a provider approved again, renamed
    audit(
        session,
        reviewer,
        "provider_application.approve",
        "provider_application",
        application.id,
        reason=reason,
        org_id=application.org_id,
    )
    await bus.emit(
        session,
        ProviderApproved(org_id=application.org_id, name=provider.name),
        aggregate_id=application.org_id,
    )
    return provider


async def reject(
    session: AsyncSession, reviewer: Principal, application: ProviderApplication, reason: str | None
) -> ProviderApplication:
    if not reason:
        raise errors.reason_required()
    if not rules.may_decide(application.state):
        raise errors.application_not_pending()
    application.state = rules.AppState.REJECTED
    application.reject_reason = reason
    application.decided_by = reviewer.user_id
    application.decided_at = utcnow()
    session.add(application)
    audit(
        session,
        reviewer,
        "provider_application.reject",
        "provider_application",
        application.id,
        reason=reason,
        org_id=application.org_id,
    )
    await bus.emit(
        session,
        ProviderApplicationRejected(
            application_id=application.id,
            org_id=application.org_id,
            org_name=application.org_name,
            reason=reason,
        ),
        aggregate_id=application.org_id,
    )
    return application


async def update_profile(session: AsyncSession, provider: Provider, body: ProviderProfileIn) -> Provider:
    provider.profile = body.profile
    provider.categories = check_categories(body.categories)
    provider.contact_name = body.contact_name
    provider.contact_phone = body.contact_phone
    provider.address = body.address
    provider.working_hours = body.working_hours
    provider.updated_at = utcnow()
    session.add(provider)
    await products.provider_changed(session, provider)
    return provider
