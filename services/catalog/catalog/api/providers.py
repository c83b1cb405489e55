"""申请入驻平台, 服务机构信息, and the reviewers' queue of applications."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select

from catalog import errors
from catalog.deps import ApprovableApplication, ProviderMember, ReadProviderMember, ReviewedApplication
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
from common.app import ClientsDep, ReadSessionDep, SessionDep
from common.auth import CurrentUser, EnterpriseUser, ReviewerUser, capability_required
from common.files import check_files, check_problems
from common.internal import unavailable
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing, require_active
from common.pagination import Paging, TabbedPage, paginate

router = APIRouter(prefix="/api/v1", tags=["provider onboarding"])


def application_out(a: ProviderApplication) -> ProviderApplicationOut:
    return ProviderApplicationOut.model_validate(a).model_copy(update={"state_label": STATE_LABELS[a.state]})


PROVIDER_CALLER = (errors.provider_required, errors.provider_not_approved)


@router.post(
    "/me/provider-application",
    response_model=ProviderApplicationOut,
    status_code=201,
    summary="申请入驻平台",
    description=(
        "已完成企业信息认证且未被暂停的企业提交服务机构入驻申请：机构简介、服务类型（平台九类之一或多项）、"
        "联系人、服务电话、地址、工作时间和资质证明文件（须为本单位用 POST /files 上传的文件）。"
        "申请进入平台审核（状态 pending，待审核）；已是服务机构或已有待审核申请时不能再次申请。"
    ),
    response_description="已提交的入驻申请（待审核）",
    responses=problems(
        capability_required("enterprise"),
        organization_suspended,
        organization_syncing,
        errors.unknown_category("categories"),
        *check_problems("proof_file_ids"),
        unavailable("identity"),
        errors.already_provider,
        errors.application_pending,
    ),
)
async def apply(
    body: ProviderApplicationIn, user: EnterpriseUser, session: SessionDep, clients: ClientsDep
) -> ProviderApplicationOut:
    """申请入驻平台: a certified, unsuspended organisation; the proof files must be its own."""
    org = await require_active(session, user, clients)
    service.check_categories(body.categories)
    await check_files(clients, body.proof_file_ids, org_id=user.org_id, field="proof_file_ids")
    application = await service.apply(session, user, body, org)
    await session.commit()
    return application_out(application)


@router.get(
    "/me/provider-application",
    response_model=ProviderApplicationOut,
    summary="我的入驻申请",
    description="本单位最近一次的服务机构入驻申请：审核状态（待审核、审核通过、审核不通过）及不通过的原因。",
    response_description="本单位最近一次的入驻申请",
    responses=problems(errors.application_not_found),
)
async def my_application(user: CurrentUser, session: ReadSessionDep) -> ProviderApplicationOut:
    """The organisation's latest application: its state and reject reason."""
    application = await service.latest_application(session, user.org_id) if user.org_id else None
    if application is None:
        raise errors.application_not_found()
    return application_out(application)


@router.get(
    "/me/provider-profile",
    response_model=ProviderProfileOut,
    summary="服务机构信息",
    description="已入驻服务机构的成员查看本机构的信息：机构简介、服务类型、联系人、服务电话、地址和工作时间。",
    response_description="本机构的服务机构信息",
    responses=problems(*PROVIDER_CALLER),
)
async def my_profile(caller: ReadProviderMember) -> ProviderProfileOut:
    return ProviderProfileOut.model_validate(caller.provider)


@router.put(
    "/me/provider-profile",
    response_model=ProviderProfileOut,
    summary="修改服务机构信息",
    description=(
        "未被暂停的服务机构成员修改本机构信息（机构简介、服务类型、联系人、服务电话、地址、工作时间），"
        "即服务产品详情页和机构详情页展示的机构名片；修改即时生效，无需审核。"
    ),
    response_description="修改后的服务机构信息",
    responses=problems(
        *PROVIDER_CALLER, organization_suspended, organization_syncing, errors.unknown_category("categories")
    ),
)
async def update_profile(
    body: ProviderProfileIn, caller: ProviderMember, session: SessionDep, clients: ClientsDep
) -> ProviderProfileOut:
    """服务机构信息: what the detail pages' provider card shows."""
    await require_active(session, caller.principal, clients)
    provider = await service.update_profile(session, caller.provider, body)
    await session.commit()
    return ProviderProfileOut.model_validate(provider)


@router.get(
    "/admin/provider-applications",
    response_model=TabbedPage[ProviderApplicationOut],
    summary="服务机构入驻审核列表",
    description="审核员查看服务机构入驻申请，按提交时间先后排列，可按状态（待审核、审核通过、审核不通过）筛选，并给出各状态的数量。",
    response_description="一页入驻申请及各状态的数量",
)
async def application_queue(
    _reviewer: ReviewerUser,
    session: ReadSessionDep,
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


@router.post(
    "/admin/provider-applications/{application_id}/approve",
    response_model=ProviderApplicationOut,
    summary="入驻申请审核通过",
    description=(
        "审核员通过一份待审核的入驻申请：该单位成为平台服务机构，可以发布服务产品（事件 catalog.provider_approved）。"
        "服务机构靠对公转账收款，单位尚未完成支付认证（收款账户）时不能通过。审核意见可选，记入审计日志。"
    ),
    response_description="审核通过后的入驻申请",
    responses=problems(
        errors.application_not_found,
        errors.provider_bank_account_missing,
        organization_syncing,
        errors.application_not_pending,
    ),
)
async def approve(
    application: ApprovableApplication,
    reviewer: ReviewerUser,
    session: SessionDep,
    body: ReviewDecisionIn | None = None,
) -> ProviderApplicationOut:
    """A provider is paid by transfer into its receiving account: none on file, no approval
    (asked of identity before the application was locked: ``ApprovableApplication``)."""
    await service.approve(session, reviewer, application, body.reason if body else None)
    await session.commit()
    return application_out(application)


@router.post(
    "/admin/provider-applications/{application_id}/reject",
    response_model=ProviderApplicationOut,
    summary="入驻申请审核不通过",
    description=(
        "审核员驳回一份待审核的入驻申请，须填写不通过的原因；申请企业可看到原因，修改后重新申请"
        "（事件 catalog.provider_application_rejected）。"
    ),
    response_description="审核不通过后的入驻申请",
    responses=problems(errors.application_not_found, errors.reason_required, errors.application_not_pending),
)
async def reject(
    application: ReviewedApplication,
    reviewer: ReviewerUser,
    session: SessionDep,
    body: ReviewDecisionIn | None = None,
) -> ProviderApplicationOut:
    await service.reject(session, reviewer, application, body.reason if body else None)
    await session.commit()
    return application_out(application)
