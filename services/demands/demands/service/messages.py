"""我要留言: a user writes, staff reply and close."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from common.orgs import OrgView
from common.rules import Refusal
from common.timers import utcnow
from demands import errors
from demands.domain import messages as rules
from demands.domain import notifications as notices
from demands.models import PlatformMessage
from demands.service import notifications


async def write(
    session: AsyncSession, principal: Principal, org: OrgView | None, content: str
) -> PlatformMessage:
    try:
        rules.check_content(content)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    message = PlatformMessage(
        user_id=principal.user_id,
        org_id=org.org_id if org else None,
        org_name=org.name if org else None,
        phone=principal.phone,
        content=content,
        status=rules.Status.OPEN,
        created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    return message


async def reply(
    session: AsyncSession, message: PlatformMessage, staff: Principal, text: str
) -> PlatformMessage:
    try:
        message.status = rules.after_reply(message.status)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    message.reply, message.replied_by, message.replied_at = text, staff.user_id, utcnow()
    session.add(message)
    audit(session, staff, "message.reply", "message", message.id, reason=text[:200])
    await notifications.add(session, notices.message_replied(message.id, message.user_id, message.content))
    return message


async def close(session: AsyncSession, message: PlatformMessage, staff: Principal) -> PlatformMessage:
    try:
        message.status = rules.after_close(message.status)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    message.closed_at = utcnow()
    session.add(message)
    audit(session, staff, "message.close", "message", message.id)
    return message
