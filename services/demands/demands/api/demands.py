"""需求: 我的需求管理 (the enterprise), the 企业需求 board (public), 我要对接 (providers) and
the reviewers' decisions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import or_
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import EnterpriseUser, OptionalUser, ProviderUser, ReviewerUser
from common.db import escape_like
from common.openapi import problems
from common.orgs import OrgCopy, organization_suspended, organization_syncing
from common.pagination import Page, Paging, paginate
from common.registry import API_PREFIX
from demands import errors
from demands.api import status_counts
from demands.deps import ActiveOrg, BoardDemand, MyDemand, OwnDemand, RespondableDemand, ReviewedDemand
from demands.domain import demands as rules
from demands.models import Demand, DemandResponse
from demands.schemas.demands import (
    BoardPage,
    DecisionIn,
    DemandIn,
    MyDemandOut,
    MyDemandPage,
    PublicDemandOut,
    ResponseIn,
    ResponseOut,
    StaffDemandOut,
    StaffDemandPage,
)
from demands.service import demands as service

router = APIRouter(prefix=API_PREFIX, tags=["demands"])

ACTIVE_ORG = (organization_suspended, organization_syncing)
CONTENT = (
    errors.unknown_category,
    errors.budget_amount_required,
    errors.budget_amount_not_expected,
    errors.content_too_long,
)

StatusFilter = Literal["pending", "under_review", "published", "returned", "rejected", "closed"]
Category = Annotated[str | None, Query(max_length=20, description="需求分类")]
Keyword = Annotated[str | None, Query(max_length=50, description="服务需求关键字")]


# --- the enterprise's own --------------------------------------------------------------------


@router.post(
    "/me/demands",
    response_model=MyDemandOut,
    status_code=201,
    summary="申请发布需求",
    description=(
        "已认证企业填写需求名称、分类、预算（我有明确预算时填写金额，需要服务商报价时不填）、内容与"
        "联系方式，申请发布需求；需求进入待处理（pending），平台审核通过后在“企业需求”中公开。"
        "被暂停的企业不能发布。"
    ),
    response_description="已提交的需求（待处理）",
    responses=problems(*CONTENT, *ACTIVE_ORG),
)
async def publish(body: DemandIn, user: EnterpriseUser, org: ActiveOrg, session: SessionDep) -> MyDemandOut:
    assert org is not None  # an enterprise member has an organisation
    demand = await service.publish(session, user, org, body)
    out = MyDemandOut.model_validate(demand)
    await session.commit()
    return out


@router.get(
    "/me/demands",
    response_model=MyDemandPage,
    summary="我发布的需求",
    description="企业按状态（待处理、审核中、已发布、退回修改、审核不通过、已关闭）查看本单位发布的需求，新的在前。",
    response_description="一页本单位的需求及各状态数量",
)
async def my_demands(
    user: EnterpriseUser, session: ReadSessionDep, paging: Paging, status: StatusFilter | None = None
) -> MyDemandPage:
    mine = col(Demand.org_id) == user.org_id
    query = select(Demand).where(mine)
    if status:
        query = query.where(col(Demand.status) == status)
    total, rows = await paginate(
        session, query.order_by(col(Demand.created_at).desc(), col(Demand.id)), paging
    )
    return MyDemandPage(
        items=[MyDemandOut.model_validate(r) for r in rows],
        total=total,
        counts=await status_counts(session, Demand, rules.TABS, mine),
        **paging.echo(),
    )


@router.get(
    "/me/demands/{demand_id}",
    response_model=MyDemandOut,
    summary="查看我的需求",
    description="企业查看本单位的一条需求，含审核意见；其他单位的需求视为不存在。",
    response_description="需求详情",
    responses=problems(errors.demand_not_found),
)
async def my_demand(demand: MyDemand) -> MyDemandOut:
    return MyDemandOut.model_validate(demand)


@router.put(
    "/me/demands/{demand_id}",
    response_model=MyDemandOut,
    summary="修改需求（待处理、退回修改）",
    description="企业修改待处理或退回修改的需求，修改后重新进入待处理等待审核；已发布的需求须关闭后重新发布。",
    response_description="修改后的需求（待处理）",
    responses=problems(errors.demand_not_found, errors.demand_not_editable, *CONTENT, *ACTIVE_ORG),
)
async def edit(body: DemandIn, demand: OwnDemand, org: ActiveOrg, session: SessionDep) -> MyDemandOut:
    assert org is not None
    await service.edit(session, demand, org, body)
    out = MyDemandOut.model_validate(demand)
    await session.commit()
    return out


@router.post(
    "/me/demands/{demand_id}/close",
    response_model=MyDemandOut,
    summary="关闭需求",
    description="企业关闭本单位的需求：已发布的需求从“企业需求”中撤下，服务机构不能再申请对接。",
    response_description="已关闭的需求",
    responses=problems(errors.demand_not_found, errors.demand_closed),
)
async def close(demand: OwnDemand, session: SessionDep) -> MyDemandOut:
    await service.close(session, demand)
    out = MyDemandOut.model_validate(demand)
    await session.commit()
    return out


@router.get(
    "/me/demands/{demand_id}/responses",
    response_model=Page[ResponseOut],
    summary="对接的服务机构",
    description="企业查看申请对接本单位某条需求的服务机构及其联系方式与留言，先申请的在前。",
    response_description="申请对接的服务机构（分页）",
    responses=problems(errors.demand_not_found),
)
async def responses(demand: MyDemand, session: ReadSessionDep, paging: Paging) -> Page[ResponseOut]:
    query = (
        select(DemandResponse)
        .where(col(DemandResponse.demand_id) == demand.id)
        .order_by(col(DemandResponse.created_at), col(DemandResponse.id))
    )
    total, rows = await paginate(session, query, paging)
    return Page[ResponseOut](
        items=[ResponseOut.model_validate(r) for r in rows], total=total, **paging.echo()
    )


# --- the public board -------------------------------------------------------------------------


def _board_conditions(category: str | None, q: str | None) -> list[object]:
    suspended = select(OrgCopy.org_id).where(col(OrgCopy.suspended).is_(True))
    conditions: list[object] = [
        col(Demand.status) == rules.Status.PUBLISHED,
        col(Demand.org_id).not_in(suspended),
    ]
    if category:
        conditions.append(col(Demand.category) == category)
    if q and q.strip():
        pattern = f"%{escape_like(q.strip())}%"
        conditions.append(
            or_(col(Demand.name).ilike(pattern, escape="\\"), col(Demand.content).ilike(pattern, escape="\\"))
        )
    return conditions


async def _responded(session: ReadSessionDep, user: OptionalUser, ids: list[str]) -> set[str]:
    if user is None or not user.org_id or not user.can("provider") or not ids:
        return set()
    rows = await session.exec(
        select(DemandResponse.demand_id).where(
            col(DemandResponse.provider_id) == user.org_id, col(DemandResponse.demand_id).in_(ids)
        )
    )
    return set(rows.all())


@router.get(
    "/demands",
    response_model=BoardPage,
    summary="企业需求（已发布）",
    description=(
        "公众端“企业需求”：已发布的需求，可按分类与关键字查询，新发布的在前。无需登录；服务机构登录后"
        "可看到自己已申请对接的需求（responded）。"
    ),
    response_description="一页已发布的需求",
)
async def board(
    user: OptionalUser, session: ReadSessionDep, paging: Paging, category: Category = None, q: Keyword = None
) -> BoardPage:
    if category == "全部":  # the board's "all" tab; an unknown category finds nothing
        category = None
    query = select(Demand).where(*_board_conditions(category, q))  # type: ignore[arg-type]
    query = query.order_by(col(Demand.published_at).desc(), col(Demand.id))
    total, rows = await paginate(session, query, paging)
    mine = await _responded(session, user, [r.id for r in rows])
    items = [PublicDemandOut.model_validate(r).model_copy(update={"responded": r.id in mine}) for r in rows]
    return BoardPage(
        items=items,
        total=total,
        category=category,
        category_description=rules.CATEGORY_DESCRIPTIONS.get(category or ""),
        **paging.echo(),
    )


@router.get(
    "/demands/{demand_id}",
    response_model=PublicDemandOut,
    summary="需求详情",
    description="公众查看一条已发布的需求。无需登录；未发布或发布单位被暂停的需求视为不存在。",
    response_description="需求详情",
    responses=problems(errors.demand_not_found),
)
async def board_demand(user: OptionalUser, demand: BoardDemand, session: ReadSessionDep) -> PublicDemandOut:
    mine = await _responded(session, user, [demand.id])
    return PublicDemandOut.model_validate(demand).model_copy(update={"responded": demand.id in mine})


@router.post(
    "/demands/{demand_id}/responses",
    response_model=ResponseOut,
    status_code=201,
    summary="我要对接",
    description=(
        "服务机构申请对接一条已发布的需求，留下联系人与留言；需求方企业收到通知并在“对接的服务机构”中"
        "看到。同一机构对同一需求只能申请一次，不能对接本单位的需求。"
    ),
    response_description="对接申请",
    responses=problems(
        errors.demand_not_found,
        errors.demand_closed,
        errors.own_demand,
        errors.already_responded,
        *ACTIVE_ORG,
    ),
)
async def respond(
    user: ProviderUser, body: ResponseIn, demand: RespondableDemand, org: ActiveOrg, session: SessionDep
) -> ResponseOut:
    assert org is not None
    row = await service.respond(session, demand, user, org, body)
    out = ResponseOut.model_validate(row)
    await session.commit()
    return out


# --- reviewers --------------------------------------------------------------------------------


@router.get(
    "/admin/demands",
    response_model=StaffDemandPage,
    summary="需求审核列表",
    description="审核人员按状态查看企业提交的需求，新申请的在前；counts 给出各状态的数量。",
    response_description="一页需求及各状态数量",
)
async def admin_demands(
    _user: ReviewerUser, session: ReadSessionDep, paging: Paging, status: StatusFilter | None = None
) -> StaffDemandPage:
    query = select(Demand)
    if status:
        query = query.where(col(Demand.status) == status)
    total, rows = await paginate(
        session, query.order_by(col(Demand.applied_at).desc(), col(Demand.id)), paging
    )
    return StaffDemandPage(
        items=[StaffDemandOut.model_validate(r) for r in rows],
        total=total,
        counts=await status_counts(session, Demand, rules.TABS),
        **paging.echo(),
    )


@router.get(
    "/admin/demands/{demand_id}",
    response_model=StaffDemandOut,
    summary="查看需求（开始审核）",
    description="审核人员打开一条需求；待处理的需求随之进入审核中（under_review），企业端可见。",
    response_description="需求详情",
    responses=problems(errors.demand_not_found),
)
async def admin_demand(demand: ReviewedDemand, user: ReviewerUser, session: SessionDep) -> StaffDemandOut:
    await service.open_for_review(session, demand, user)
    out = StaffDemandOut.model_validate(demand)
    await session.commit()
    return out


async def _decide(
    demand: ReviewedDemand, user: ReviewerUser, session: SessionDep, decision: str, body: DecisionIn
):
    await service.decide(session, demand, user, decision, body.reason)
    out = StaffDemandOut.model_validate(demand)
    await session.commit()
    return out


@router.post(
    "/admin/demands/{demand_id}/approve",
    response_model=StaffDemandOut,
    summary="审核通过（发布）",
    description="审核人员通过需求，需求随即在“企业需求”中发布，并通知企业。",
    response_description="已发布的需求",
    responses=problems(errors.demand_not_found, errors.demand_not_reviewable),
)
async def approve(
    demand: ReviewedDemand, user: ReviewerUser, session: SessionDep, body: DecisionIn | None = None
) -> StaffDemandOut:
    return await _decide(demand, user, session, "approve", body or DecisionIn())


@router.post(
    "/admin/demands/{demand_id}/return",
    response_model=StaffDemandOut,
    summary="退回修改",
    description="审核人员填写原因将需求退回企业修改，并通知企业；企业修改后重新提交审核。",
    response_description="退回修改的需求",
    responses=problems(errors.demand_not_found, errors.demand_not_reviewable, errors.reason_required),
)
async def return_(
    demand: ReviewedDemand, user: ReviewerUser, session: SessionDep, body: DecisionIn
) -> StaffDemandOut:
    return await _decide(demand, user, session, "return", body)


@router.post(
    "/admin/demands/{demand_id}/reject",
    response_model=StaffDemandOut,
    summary="审核不通过",
    description="审核人员填写原因驳回需求，并通知企业；驳回的需求不能再修改。",
    response_description="审核不通过的需求",
    responses=problems(errors.demand_not_found, errors.demand_not_reviewable, errors.reason_required),
)
async def reject(
    demand: ReviewedDemand, user: ReviewerUser, session: SessionDep, body: DecisionIn
) -> StaffDemandOut:
    return await _decide(demand, user, session, "reject", body)
