"""我要留言: any signed-in user writes to the platform; any staff member replies and closes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser, StaffUser
from common.openapi import problems
from common.orgs import organization_suspended, organization_syncing
from common.pagination import Page, Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from demands import errors
from demands.api import status_counts
from demands.deps import ActiveOrg, ReadStaffMessage, StaffMessage
from demands.domain import messages as rules
from demands.models import PlatformMessage
from demands.schemas.messages import MessageIn, MessageOut, ReplyIn, StaffMessageOut
from demands.service import messages as service

router = APIRouter(prefix=API_PREFIX, tags=["messages"])


@router.post(
    "/me/messages",
    response_model=MessageOut,
    status_code=201,
    summary="我要留言",
    description="登录用户向平台留言（不超过 500 字）；平台人员回复后用户收到通知。被暂停单位的用户不能留言。",
    response_description="已提交的留言",
    responses=problems(
        errors.message_empty, errors.message_too_long, organization_suspended, organization_syncing
    ),
)
async def write(body: MessageIn, user: CurrentUser, org: ActiveOrg, session: SessionDep) -> MessageOut:
    message = await service.write(session, user, org, body.content)
    out = MessageOut.model_validate(message)
    await session.commit()
    return out


@router.get(
    "/me/messages",
    response_model=Page[MessageOut],
    summary="我的留言（含平台回复）",
    description="登录用户查看自己的留言及平台的回复，新的在前。",
    response_description="一页本人的留言",
)
async def mine(user: CurrentUser, session: ReadSessionDep, paging: Paging) -> Page[MessageOut]:
    query = select(PlatformMessage).where(col(PlatformMessage.user_id) == user.user_id)
    query = query.order_by(col(PlatformMessage.created_at).desc(), col(PlatformMessage.id))
    total, rows = await paginate(session, query, paging)
    return Page[MessageOut](items=[MessageOut.model_validate(r) for r in rows], total=total, **paging.echo())


@router.get(
    "/admin/messages",
    response_model=TabbedPage[StaffMessageOut],
    summary="留言管理",
    description="平台人员按状态（待回复、已回复、已关闭）查看用户留言，新的在前；counts 给出各状态的数量。",
    response_description="一页留言及各状态数量",
)
async def listing(
    _staff: StaffUser,
    session: ReadSessionDep,
    paging: Paging,
    status: Literal["open", "replied", "closed"] | None = None,
) -> TabbedPage[StaffMessageOut]:
    query = select(PlatformMessage)
    if status:
        query = query.where(col(PlatformMessage.status) == status)
    query = query.order_by(col(PlatformMessage.created_at).desc(), col(PlatformMessage.id))
    total, rows = await paginate(session, query, paging)
    return TabbedPage[StaffMessageOut](
        items=[StaffMessageOut.model_validate(r) for r in rows],
        total=total,
        counts=await status_counts(session, PlatformMessage, rules.TABS),
        **paging.echo(),
    )


@router.get(
    "/admin/messages/{message_id}",
    response_model=StaffMessageOut,
    summary="查看留言",
    description="平台人员查看一条留言及留言人、所属单位与回复。",
    response_description="留言详情",
    responses=problems(errors.message_not_found),
)
async def detail(message: ReadStaffMessage) -> StaffMessageOut:
    return StaffMessageOut.model_validate(message)


@router.post(
    "/admin/messages/{message_id}/reply",
    response_model=StaffMessageOut,
    summary="回复留言",
    description="平台人员回复留言（可再次回复以更新），留言人收到通知；记入操作日志。已关闭的留言不能回复。",
    response_description="已回复的留言",
    responses=problems(
        errors.message_not_found, errors.message_empty, errors.message_too_long, errors.message_closed
    ),
)
async def reply(
    body: ReplyIn, message: StaffMessage, staff: StaffUser, session: SessionDep
) -> StaffMessageOut:
    await service.reply(session, message, staff, body.reply)
    out = StaffMessageOut.model_validate(message)
    await session.commit()
    return out


@router.post(
    "/admin/messages/{message_id}/close",
    response_model=StaffMessageOut,
    summary="关闭留言",
    description="平台人员关闭一条留言，之后不能再回复；记入操作日志。",
    response_description="已关闭的留言",
    responses=problems(errors.message_not_found, errors.message_closed),
)
async def close(message: StaffMessage, staff: StaffUser, session: SessionDep) -> StaffMessageOut:
    await service.close(session, message, staff)
    out = StaffMessageOut.model_validate(message)
    await session.commit()
    return out
