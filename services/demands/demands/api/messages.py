"""我要留言: any signed-in user writes to the platform; any staff member replies and closes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import CurrentUser, StaffUser
from common.pagination import Page, Paging, TabbedPage, paginate
from common.registry import API_PREFIX
from demands.api import status_counts
from demands.deps import ActiveOrg, StaffMessage
from demands.domain import messages as rules
from demands.models import PlatformMessage
from demands.schemas.messages import MessageIn, MessageOut, ReplyIn, StaffMessageOut
from demands.service import messages as service

router = APIRouter(prefix=API_PREFIX, tags=["messages"])


@router.post("/me/messages", response_model=MessageOut, status_code=201, summary="我要留言")
async def write(body: MessageIn, user: CurrentUser, org: ActiveOrg, session: SessionDep) -> MessageOut:
    message = await service.write(session, user, org, body.content)
    out = MessageOut.model_validate(message)
    await session.commit()
    return out


@router.get("/me/messages", response_model=Page[MessageOut], summary="我的留言（含平台回复）")
async def mine(user: CurrentUser, session: ReadSessionDep, paging: Paging) -> Page[MessageOut]:
    query = select(PlatformMessage).where(col(PlatformMessage.user_id) == user.user_id)
    query = query.order_by(col(PlatformMessage.created_at).desc(), col(PlatformMessage.id))
    total, rows = await paginate(session, query, paging)
    return Page[MessageOut](items=[MessageOut.model_validate(r) for r in rows], total=total, **paging.echo())


@router.get("/admin/messages", response_model=TabbedPage[StaffMessageOut], summary="留言管理")
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


@router.get("/admin/messages/{message_id}", response_model=StaffMessageOut, summary="查看留言")
async def detail(message: StaffMessage) -> StaffMessageOut:
    return StaffMessageOut.model_validate(message)


@router.post("/admin/messages/{message_id}/reply", response_model=StaffMessageOut, summary="回复留言")
async def reply(
    body: ReplyIn, message: StaffMessage, staff: StaffUser, session: SessionDep
) -> StaffMessageOut:
    await service.reply(session, message, staff, body.reply)
    out = StaffMessageOut.model_validate(message)
    await session.commit()
    return out


@router.post("/admin/messages/{message_id}/close", response_model=StaffMessageOut, summary="关闭留言")
async def close(message: StaffMessage, staff: StaffUser, session: SessionDep) -> StaffMessageOut:
    await service.close(session, message, staff)
    out = StaffMessageOut.model_validate(message)
    await session.commit()
    return out
