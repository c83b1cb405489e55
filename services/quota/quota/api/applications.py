"""服务券配额申请 (enterprises) and the review queue (reviewers)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, func, select

from common.app import ReadSessionDep, RuntimeDep, SessionDep
from common.auth import EnterpriseUser, ReviewerUser
from common.categories import VOUCHER_TYPES
from common.files import check_problems
from common.internal import unavailable
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing
from common.pagination import Page, Paging, TabbedPage, paginate
from quota import errors
from quota.deps import CurrentCampaign
from quota.domain.applications import APPLICATION_STATE_LABELS
from quota.models import Campaign, QuotaApplication
from quota.schemas.applications import ApplicationIn, ApplicationOut, ApproveIn, RejectIn
from quota.service import applications as service
from quota.service.campaigns import types_of

router = APIRouter(prefix="/api/v1", tags=["quota-applications"])

States = Literal["pending_review", "approved", "rejected"]


def out(app: QuotaApplication) -> ApplicationOut:
    return ApplicationOut.model_validate(app).model_copy(
        update={
            "state_label": APPLICATION_STATE_LABELS.get(app.state, app.state),
            "voucher_type_label": VOUCHER_TYPES.get(app.voucher_type, app.voucher_type),
        }
    )


@router.post(
    "/me/quota-applications",
    response_model=ApplicationOut,
    status_code=201,
    summary="服务券配额申请",
    description=(
        "已认证企业申请本年度某一类型的服务券配额。通用券按企业划型名单核定档次（不在名单中的申请"
        "标记待人工核定），每年限申请一次；融资担保券、设备租赁券须填写申领额度、计算依据金额并上传"
        "合同凭证（proof_file_ids），申领额度不得超过依据金额可给予的比例与本年度剩余可申领额度。"
        "申请进入待审核（pending_review），由平台审核人员审核。"
    ),
    response_description="已提交的配额申请（待审核）",
    responses=problems(
        errors.no_campaign,
        errors.voucher_type_closed,
        errors.general_already_applied,
        errors.special_fields_required,
        *(errors.special_request(code) for code in errors._SPECIAL_TEXTS),
        *check_problems("proof_file_ids"),
        organization_suspended,
        organization_syncing,
        unavailable("identity"),
    ),
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


@router.get(
    "/me/quota-applications",
    response_model=Page[ApplicationOut],
    summary="我的配额申请",
    description="已认证企业查看本单位的配额申请及审核结果（新申请在前，分页），含不通过的理由。",
    response_description="本单位的配额申请（新申请在前）",
)
async def my_applications(
    user: EnterpriseUser, session: ReadSessionDep, paging: Paging
) -> Page[ApplicationOut]:
    query = (
        select(QuotaApplication)
        .where(col(QuotaApplication.enterprise_id) == user.org_id)
        .order_by(col(QuotaApplication.created_at).desc(), col(QuotaApplication.id).desc())
    )
    total, rows = await paginate(session, query, paging)
    return Page[ApplicationOut](items=[out(a) for a in rows], total=total, **paging.echo())


@router.get(
    "/admin/quota-applications",
    response_model=TabbedPage[ApplicationOut],
    summary="配额申请审核队列",
    description=(
        "审核人员按状态（待审核、审核通过、审核不通过）、是否待人工核定档次与券种筛选配额申请，"
        "先提交的在前；counts 给出各状态的数量（页签角标）。"
    ),
    response_description="一页配额申请及各状态数量",
)
async def queue(
    _staff: ReviewerUser,
    session: ReadSessionDep,
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
    "/admin/quota-applications/{application_id}/approve",
    response_model=ApplicationOut,
    summary="审核通过",
    description=(
        "审核人员通过一项待审核的配额申请：通用券按划型档次发放（不在名单中的企业按基础档核定须填写"
        "理由），专项券须填写核定额度（不超过申领额度与剩余可用额度）。企业的服务券随之发放或增加额度，"
        "并通知企业；配额有效期已结束的类型不能再通过。"
    ),
    response_description="审核通过后的配额申请",
    responses=problems(
        errors.application_not_found,
        errors.application_decided,
        errors.voucher_type_closed,
        errors.voucher_window_closed(date(2026, 12, 31)),
        errors.reason_required,
        errors.approved_amount_required,
        *(errors.approval_amount(code) for code in errors._APPROVAL_TEXTS),
    ),
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
    "/admin/quota-applications/{application_id}/reject",
    response_model=ApplicationOut,
    summary="审核不通过",
    description="审核人员驳回一项待审核的配额申请并填写理由；企业在“我的配额申请”中看到理由，可重新申请。",
    response_description="审核不通过后的配额申请",
    responses=problems(errors.application_not_found, errors.application_decided),
)
async def reject(
    application_id: str, body: RejectIn, staff: ReviewerUser, session: SessionDep
) -> ApplicationOut:
    decided = await service.reject(session, staff, application_id, body.reason)
    result = out(decided)
    await session.commit()
    return result
