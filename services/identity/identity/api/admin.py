"""Staff routes (管理端): organisations (search, suspend, restore) and staff accounts. The
staff audit log is the gateway's (``GET /api/v1/admin/audit-log`` composes every service's
``/internal/audit-log``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from common.app import ReadSessionDep, SessionDep
from common.auth import AdminUser, StaffUser
from common.openapi import problems
from common.pagination import Page, Paging, paginate
from identity import errors
from identity.deps import Ctx, Id
from identity.schemas.admin import (
    AdminOrganizationOut,
    ReasonIn,
    StaffIn,
    StaffOut,
    StaffUpdateIn,
)
from identity.service import admin as service

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


# --- organisations -----------------------------------------------------------------------------


@router.get(
    "/organizations",
    response_model=Page[AdminOrganizationOut],
    summary="查询企业与服务机构",
    description="平台人员按名称或统一社会信用代码、身份（企业、服务机构）与是否暂停查询组织，新注册的在前。",
    response_description="一页组织",
)
async def list_organizations(
    _staff: StaffUser,
    session: ReadSessionDep,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100, description="名称或统一社会信用代码的一部分")] = None,
    capability: Literal["enterprise", "provider"] | None = None,
    suspended: bool | None = None,
) -> Page[AdminOrganizationOut]:
    query = service.organizations_query(q, capability, suspended)
    total, rows = await paginate(session, query, paging)
    return Page[AdminOrganizationOut](
        items=[AdminOrganizationOut.model_validate(o) for o in rows], total=total, **paging.echo()
    )


@router.get(
    "/organizations/{org_id}",
    response_model=AdminOrganizationOut,
    summary="查看企业或服务机构",
    description="平台人员按编号查看一个企业或服务机构（与列表同一字段，证件号码脱敏）。",
    response_description="组织详情",
    responses=problems(errors.organization_not_found),
)
async def get_organization(org_id: Id, _staff: StaffUser, session: ReadSessionDep) -> AdminOrganizationOut:
    return AdminOrganizationOut.model_validate(await service.organization(session, org_id))


@router.post(
    "/organizations/{org_id}/suspend",
    response_model=AdminOrganizationOut,
    summary="暂停企业或服务机构",
    description=(
        "管理员填写理由暂停一个企业或服务机构：该单位不能再办理新的业务（申请、下单、发布、上传），"
        "进行中的业务照常完成。发布 organization_suspended 事件，记入操作日志。"
    ),
    response_description="已暂停的组织",
    responses=problems(errors.organization_not_found, errors.already_suspended),
)
async def suspend_organization(
    org_id: Id, body: ReasonIn, admin: AdminUser, session: SessionDep
) -> AdminOrganizationOut:
    org = await service.decide_suspension(session, admin, org_id, body.reason, suspend=True)
    await session.commit()
    return AdminOrganizationOut.model_validate(org)


@router.post(
    "/organizations/{org_id}/restore",
    response_model=AdminOrganizationOut,
    summary="恢复企业或服务机构",
    description="管理员填写理由恢复被暂停的组织。发布 organization_restored 事件，记入操作日志。",
    response_description="已恢复的组织",
    responses=problems(errors.organization_not_found, errors.not_suspended),
)
async def restore_organization(
    org_id: Id, body: ReasonIn, admin: AdminUser, session: SessionDep
) -> AdminOrganizationOut:
    org = await service.decide_suspension(session, admin, org_id, body.reason, suspend=False)
    await session.commit()
    return AdminOrganizationOut.model_validate(org)


# --- staff accounts ----------------------------------------------------------------------------


@router.get(
    "/staff",
    response_model=Page[StaffOut],
    summary="平台人员列表",
    description="管理员查看平台人员账号（审核人员、财务人员、管理员），可按是否启用筛选，新建的在前。",
    response_description="一页平台人员",
)
async def list_staff(
    _admin: AdminUser, session: ReadSessionDep, paging: Paging, active: bool | None = None
) -> Page[StaffOut]:
    query = service.staff_query(active)
    total, rows = await paginate(session, query, paging)
    return Page[StaffOut](items=[StaffOut.model_validate(u) for u in rows], total=total, **paging.echo())


@router.post(
    "/staff",
    response_model=StaffOut,
    status_code=201,
    summary="新增平台人员",
    description="管理员新增平台人员账号：姓名、手机号、角色与初始密码（可不设，以验证码登录）；记入操作日志。",
    response_description="新增的平台人员",
    responses=problems(errors.weak_password("密码过于简单", field="password"), errors.phone_taken),
)
async def create_staff(body: StaffIn, admin: AdminUser, session: SessionDep, ctx: Ctx) -> StaffOut:
    user = await service.create_staff(session, ctx, admin, body)
    await session.commit()
    await session.refresh(user)
    return StaffOut.model_validate(user)


@router.put(
    "/staff/{user_id}",
    response_model=StaffOut,
    summary="修改平台人员（姓名、角色、启用）",
    description=(
        "管理员修改平台人员的姓名、角色或启用状态；停用或改变角色时其登录在各服务数秒内失效。"
        "管理员不能停用自己或取消自己的管理员角色。记入操作日志。"
    ),
    response_description="修改后的平台人员",
    responses=problems(
        errors.staff_not_found, errors.cannot_change_self("不能停用自己的账号"), errors.phone_taken
    ),
)
async def update_staff(user_id: Id, body: StaffUpdateIn, admin: AdminUser, session: SessionDep) -> StaffOut:
    user = await service.update_staff(session, admin, user_id, body)
    await session.commit()
    return StaffOut.model_validate(user)
