"""Notices: administrators publish, edit and withdraw; everyone reads."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from common.audit import audit
from common.auth import Principal
from common.files import file_problem
from common.internal import ServiceClients
from common.reads import FileMeta
from common.rules import Refusal
from common.timers import utcnow
from demands import errors
from demands.domain import notices as rules
from demands.models import Notice
from demands.schemas.notices import NoticeIn

PDF = "application/pdf"


async def _attachment(clients: ServiceClients, admin: Principal, file_id: str) -> str:
    """The PDF's name, when the file is a PDF this administrator uploaded (/files)."""
    meta = await clients.read("identity", f"/internal/files/{file_id}", FileMeta)
    if meta is None:
        raise file_problem("attachment_file_id", "file_unknown", f"文件 {file_id} 不存在")
    if meta.uploader_id != admin.user_id:
        raise file_problem("attachment_file_id", "file_not_owned", f"文件 {file_id} 不是您上传的")
    if meta.content_type != PDF:
        raise file_problem("attachment_file_id", "file_type_not_allowed", "公告附件须为 PDF 文件")
    return meta.name or "附件.pdf"


async def _fill(notice: Notice, body: NoticeIn, clients: ServiceClients, admin: Principal) -> None:
    html = rules.clean_html(body.body_html)
    try:
        rules.check_body(html, body.attachment_file_id)
    except Refusal as refusal:
        raise errors.from_refusal(refusal) from None
    if body.attachment_file_id and body.attachment_file_id != notice.attachment_file_id:
        notice.attachment_name = await _attachment(clients, admin, body.attachment_file_id)
    elif not body.attachment_file_id:
        notice.attachment_name = None
    notice.title, notice.kind, notice.body_html = body.title, body.kind, html
    notice.attachment_file_id = body.attachment_file_id


async def create(session: AsyncSession, clients: ServiceClients, admin: Principal, body: NoticeIn) -> Notice:
    now = utcnow()
    notice = Notice(title="", kind=body.kind, created_by=admin.user_id, published_at=now, updated_at=now)
    await _fill(notice, body, clients, admin)
    session.add(notice)
    await session.flush()
    audit(session, admin, "notice.publish", "notice", notice.id, title=notice.title)
    return notice


async def edit(
    session: AsyncSession, clients: ServiceClients, notice: Notice, admin: Principal, body: NoticeIn
) -> Notice:
    await _fill(notice, body, clients, admin)
    notice.updated_at = utcnow()
    session.add(notice)
    audit(session, admin, "notice.edit", "notice", notice.id, title=notice.title)
    return notice


async def withdraw(session: AsyncSession, notice: Notice, admin: Principal) -> None:
    audit(session, admin, "notice.withdraw", "notice", notice.id, title=notice.title)
    await session.delete(notice)
