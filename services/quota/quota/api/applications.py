"""服务券配额申请 (enterprises) and the review queue (reviewers)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, func, select

from common.app import RuntimeDep, SessionDep
from common.categories import VOUCHER_TYPES
from common.pagination import Page, Paging, TabbedPage, paginate
from quota import domain, errors
from quota.deps import CurrentCampaign, EnterpriseUser, ReviewerUser
from quota.models import Campaign, QuotaApplication
from quota.schemas import ApplicationIn, ApplicationOut, ApproveIn, RejectIn
from quota.service import applications as service
from quota.service.campaigns import types_of

router = APIRouter(prefix="/api/v1", tags=["quota-applications"])

States = Literal["pending_review", "approved", "rejected"]


def out(app: QuotaApplication) -> ApplicationOut:
    return ApplicationOut.model_validate(app).model_copy(
        update={
            "state_label": domain.APPLICATION_STATE_LABELS.get(app.state, app.state),
            "voucher_type_label": VOUCHER_TYPES.get(app.voucher_type, app.voucher_type),
        }
    )


@router.post(
    "/me/quota-applications", response_model=ApplicationOut, status_code=201, summary="服务券配额申请"
)
async def apply(
    body: ApplicationIn,
    user: EnterpriseUser,
    session: SessionDep,
    runtime: RuntimeDep,
    campaign: CurrentCampaign,
) -> ApplicationOut:
    kinds = await types_of(session, campaign.year)
    app = await service.apply(session, runtime.clients, user, campaign, kinds, body.model_dump())
    result = out(app)
    await session.commit()
    return result


@router.get("/me/quota-applications", response_model=Page[ApplicationOut], summary="我的配额申请")
async def my_applications(user: EnterpriseUser, session: SessionDep, paging: Paging) -> Page[ApplicationOut]:
    query = (
        select(QuotaApplication)
        .where(col(QuotaApplication.enterprise_id) == user.org_id)
        .order_by(col(QuotaApplication.created_at).desc(), col(QuotaApplication.id).desc())
    )
    total, rows = await paginate(session, query, paging)
    return Page[ApplicationOut](items=[out(a) for a in rows], total=total, **paging.echo())


@router.get(
    "/admin/quota-applications", response_model=TabbedPage[ApplicationOut], summary="配额申请审核队列"
)
async def queue(
    _staff: ReviewerUser,
    session: SessionDep,
    paging: Paging,
    status: Annotated[States | None, Query()] = None,
    flagged: Annotated[bool | None, Query()] = None,
    voucher_type: Annotated[
        Literal["general", "financing_guarantee", "equipment_leasing"] | None, Query()
    ] = None,
) -> TabbedPage[ApplicationOut]:
    query = select(QuotaApplication)
    if status:
        query = query.where(col(QuotaApplication.state) == status)
    if flagged is not None:
        query = query.where(col(QuotaApplication.flagged) == flagged)
    if voucher_type:
        query = query.where(col(QuotaApplication.voucher_type) == voucher_type)
    total, rows = await paginate(
        session, query.order_by(col(QuotaApplication.created_at), col(QuotaApplication.id)), paging
    )
    counted = await session.exec(
        select(QuotaApplication.state, func.count()).group_by(QuotaApplication.state)
    )
    counts = {s: 0 for s in ("pending_review", "approved", "rejected")}
    counts.update({s: int(n) for s, n in counted.all()})
    return TabbedPage[ApplicationOut](
        items=[out(a) for a in rows], total=total, counts=counts, **paging.echo()
    )


@router.post(
    "/admin/quota-applications/{application_id}/approve", response_model=ApplicationOut, summary="审核通过"
)
async def approve(
    application_id: str, body: ApproveIn, staff: ReviewerUser, session: SessionDep
) -> ApplicationOut:
    app = await session.get(QuotaApplication, application_id)
    if app is None:
        raise errors.application_not_found()
    campaign = await session.get(Campaign, app.campaign_year)
    kinds = await types_of(session, app.campaign_year)
    if campaign is None or app.voucher_type not in kinds:
        raise errors.voucher_type_closed()
    decided = await service.approve(
        session, staff, application_id, campaign, kinds[app.voucher_type], body.approved_fen, body.reason
    )
    result = out(decided)
    await session.commit()
    return result


@router.post(
    "/admin/quota-applications/{application_id}/reject", response_model=ApplicationOut, summary="审核不通过"
)
async def reject(
    application_id: str, body: RejectIn, staff: ReviewerUser, session: SessionDep
) -> ApplicationOut:
    decided = await service.reject(session, staff, application_id, body.reason)
    result = out(decided)
    await session.commit()
    return result
