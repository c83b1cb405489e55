"""申请入驻平台, 服务机构信息, and the reviewers' queue of applications."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select

from catalog import errors
from catalog.deps import CertifiedMember, ClientsDep, ProviderMember, ReviewedApplication, Reviewer
from catalog.domain.providers import STATE_LABELS, AppState
from catalog.models import ProviderApplication
from catalog.schemas.providers import (
    ProviderApplicationIn,
    ProviderApplicationOut,
    ProviderProfileIn,
    ProviderProfileOut,
    ReviewDecisionIn,
)
from catalog.service import providers as service
from common.app import SessionDep
from common.auth import CurrentUser
from common.files import check_files
from common.orgs import has_receiving_account, require_active
from common.pagination import Paging, TabbedPage, paginate

router = APIRouter(prefix="/api/v1", tags=["provider onboarding"])


def application_out(a: ProviderApplication) -> ProviderApplicationOut:
    return ProviderApplicationOut.model_validate(a).model_copy(update={"state_label": STATE_LABELS[a.state]})


@router.post("/me/provider-application", response_model=ProviderApplicationOut, status_code=201)
async def apply(
    body: ProviderApplicationIn, user: CertifiedMember, session: SessionDep, clients: ClientsDep
) -> ProviderApplicationOut:
    """申请入驻平台: a certified, unsuspended organisation; the proof files must be its own."""
    org = await require_active(session, user, clients)
    service.check_categories(body.categories)
    await check_files(clients, body.proof_file_ids, org_id=user.org_id, field="proof_file_ids")
    application = await service.apply(session, user, body, org)
    await session.commit()
    return application_out(application)


@router.get("/me/provider-application", response_model=ProviderApplicationOut)
async def my_application(user: CurrentUser, session: SessionDep) -> ProviderApplicationOut:
    """The organisation's latest application: its state and reject reason."""
    application = await service.latest_application(session, user.org_id) if user.org_id else None
    if application is None:
        raise errors.application_not_found()
    return application_out(application)


@router.get("/me/provider-profile", response_model=ProviderProfileOut)
async def my_profile(caller: ProviderMember) -> ProviderProfileOut:
    return ProviderProfileOut.model_validate(caller.provider)


@router.put("/me/provider-profile", response_model=ProviderProfileOut)
async def update_profile(
    body: ProviderProfileIn, caller: ProviderMember, session: SessionDep, clients: ClientsDep
) -> ProviderProfileOut:
    """服务机构信息: what the detail pages' provider card shows."""
    await require_active(session, caller.principal, clients)
    provider = service.update_profile(session, caller.provider, body)
    await session.commit()
    return ProviderProfileOut.model_validate(provider)


@router.get("/admin/provider-applications", response_model=TabbedPage[ProviderApplicationOut])
async def application_queue(
    _reviewer: Reviewer,
    session: SessionDep,
    paging: Paging,
    status: Annotated[Literal["pending_review", "approved", "rejected"] | None, Query()] = None,
) -> TabbedPage[ProviderApplicationOut]:
    """The reviewers' queue (oldest first), with counts per state."""
    query = select(ProviderApplication).order_by(
        col(ProviderApplication.created_at).asc(), col(ProviderApplication.id).asc()
    )
    if status:
        query = query.where(col(ProviderApplication.state) == status)
    total, rows = await paginate(session, query, paging)
    grouped = (
        await session.exec(
            select(col(ProviderApplication.state), func.count()).group_by(col(ProviderApplication.state))
        )
    ).all()
    counts = {s.value: 0 for s in AppState} | {str(s): int(n) for s, n in grouped}
    return TabbedPage[ProviderApplicationOut](
        items=[application_out(a) for a in rows], total=total, counts=counts, **paging.echo()
    )


@router.post("/admin/provider-applications/{application_id}/approve", response_model=ProviderApplicationOut)
async def approve(
    application: ReviewedApplication,
    reviewer: Reviewer,
    session: SessionDep,
    clients: ClientsDep,
    body: ReviewDecisionIn | None = None,
) -> ProviderApplicationOut:
    """A provider is paid by transfer into its receiving account: none on file, no approval."""
    if not await has_receiving_account(clients, application.org_id):
        raise errors.provider_bank_account_missing()
    await service.approve(session, reviewer, application, body.reason if body else None)
    await session.commit()
    return application_out(application)


@router.post("/admin/provider-applications/{application_id}/reject", response_model=ProviderApplicationOut)
async def reject(
    application: ReviewedApplication,
    reviewer: Reviewer,
    session: SessionDep,
    body: ReviewDecisionIn | None = None,
) -> ProviderApplicationOut:
    await service.reject(session, reviewer, application, body.reason if body else None)
    await session.commit()
    return application_out(application)
