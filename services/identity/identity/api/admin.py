"""Staff routes (管理端): organisations (search, suspend, restore), staff accounts, and
identity's own audit log (also served to the gateway, which composes every service's)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.app import ReadSessionDep, SessionDep
from common.audit import AuditOut, audit_conditions, audit_out
from common.auth import AdminUser, StaffUser
from common.bus import publish
from common.datetimes import Moment
from common.events import OrganizationRestored, OrganizationSuspended
from common.masking import mask_phone
from common.openapi import problems
from common.pagination import Page, Paging, paginate
from common.timers import utcnow
from identity import errors
from identity.deps import Ctx, Id
from identity.domain import admin as org_domain
from identity.domain import auth as domain
from identity.models import AuditEntry, Organization, User
from identity.schemas.admin import (
    AdminOrganizationOut,
    ReasonIn,
    StaffIn,
    StaffOut,
    StaffUpdateIn,
)
from identity.service import auth as service
from identity.service import organizations as org_service

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
    session: SessionDep,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100, description="名称或统一社会信用代码的一部分")] = None,
    capability: Literal["enterprise", "provider"] | None = None,
    suspended: bool | None = None,
) -> Page[AdminOrganizationOut]:
    conditions = []
    if q and q.strip():
        pattern = org_domain.like_pattern(q.strip())
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
    query = (
        select(Organization)
        .where(*conditions)
        .order_by(col(Organization.created_at).desc(), col(Organization.id))
    )
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
    org = await org_service.load_org(session, org_id)
    if org is None:
        raise errors.organization_not_found()
    return AdminOrganizationOut.model_validate(org)


async def _decide_suspension(
    session: AsyncSession, admin_id: str, admin_role: str, org_id: str, reason: str, *, suspend: bool
) -> AdminOrganizationOut:
    org = await org_service.load_org(session, org_id, lock=True)
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
    await publish(session, event, aggregate_id=org.id)
    service.audit(
        session,
        actor_id=admin_id,
        actor_role=admin_role,
        action="organization.suspended" if suspend else "organization.restored",
        target_type="organization",
        target_id=org.id,
        reason=reason,
        details={"name": org.name, "uscc": org.uscc},
    )
    await session.commit()
    return AdminOrganizationOut.model_validate(org)


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
    return await _decide_suspension(session, admin.user_id, admin.role, org_id, body.reason, suspend=True)


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
    return await _decide_suspension(session, admin.user_id, admin.role, org_id, body.reason, suspend=False)


# --- staff accounts ----------------------------------------------------------------------------


@router.get(
    "/staff",
    response_model=Page[StaffOut],
    summary="平台人员列表",
    description="管理员查看平台人员账号（审核人员、财务人员、管理员），可按是否启用筛选，新建的在前。",
    response_description="一页平台人员",
)
async def list_staff(
    _admin: AdminUser, session: SessionDep, paging: Paging, active: bool | None = None
) -> Page[StaffOut]:
    conditions = [col(User.role).in_(domain.STAFF_ROLES)]
    if active is not None:
        conditions.append(col(User.active).is_(active))
    query = select(User).where(*conditions).order_by(col(User.created_at).desc(), col(User.id))
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
    password_hash = None
    if body.password is not None:
        await service.require_strong(body.password, body.phone, [body.name], field="password")
        password_hash = await service.hash_password(ctx, body.password)
    if await service.active_user_by_phone(session, body.phone) is not None:
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
    service.audit(
        session,
        actor_id=admin.user_id,
        actor_role=admin.role,
        action="staff.created",
        target_type="user",
        target_id=user.id,
        details={"name": body.name, "phone": mask_phone(body.phone), "role": body.role},
    )
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
    user = (
        await session.exec(
            select(User).where(User.id == user_id, col(User.role).in_(domain.STAFF_ROLES)).with_for_update()
        )
    ).first()
    if user is None:
        raise errors.staff_not_found()
    if why := org_domain.own_change_problem(
        actor_id=admin.user_id, target_id=user.id, role=body.role, active=body.active
    ):
        raise errors.cannot_change_self(why)
    changes: dict[str, list[object]] = {}
    for field in ("name", "role", "active"):
        value = getattr(body, field)
        if value is not None and value != getattr(user, field):
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if not changes:
        return StaffOut.model_validate(user)  # nothing to change, nothing to audit
    session.add(user)
    try:
        await session.flush()  # reactivating a phone someone else now uses
    except IntegrityError:
        await session.rollback()
        raise errors.phone_taken() from None
    if changes.get("active") == [True, False]:
        await service.revoke_user_sessions(session, user.id)
        await service.take_access_away(session, user.id, None, service.DEACTIVATED)
    elif "role" in changes:
        # The session goes on: its next token (refresh) carries the new role, the old ones stop.
        await service.take_access_away(session, user.id, None, service.ROLE_CHANGED)
    service.audit(
        session,
        actor_id=admin.user_id,
        actor_role=admin.role,
        action="staff.updated",
        target_type="user",
        target_id=user.id,
        details={"changes": changes},
    )
    await session.commit()
    return StaffOut.model_validate(user)


# --- audit log ---------------------------------------------------------------------------------


@router.get(
    "/audit-log",
    response_model=Page[AuditOut],
    summary="操作日志（身份服务）",
    description="平台人员查看身份服务记录的操作（暂停、恢复、人员变更等），可按操作人、操作与起始时间筛选，新的在前。",
    response_description="一页操作记录",
)
async def audit_log(
    _staff: StaffUser,
    session: SessionDep,
    paging: Paging,
    actor: Annotated[str | None, Query(max_length=36)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    since: Moment | None = None,
) -> Page[AuditOut]:
    conditions = audit_conditions(actor, action, since)
    query = (
        select(AuditEntry).where(*conditions).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    )
    total, rows = await paginate(session, query, paging)
    return Page[AuditOut](items=[audit_out(r, "identity") for r in rows], total=total, **paging.echo())
