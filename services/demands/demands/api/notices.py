"""The portal's notices and policy documents (服务券管理办法, 企业操作指南, 服务商进驻操作指南,
2024年“揭榜”通知): public to read, published by administrators."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from sqlmodel import col, select

from common.app import ClientsDep, ReadSessionDep, SessionDep
from common.auth import AdminUser
from common.files import check_problems
from common.http import content_disposition
from common.openapi import problems
from common.pagination import Page, Paging, paginate
from common.registry import API_PREFIX
from demands import errors
from demands.deps import AdminNotice, PublicNotice
from demands.models import Notice
from demands.schemas.notices import NoticeIn, NoticeOut, NoticeSummaryOut
from demands.service import notices as service

router = APIRouter(prefix=API_PREFIX, tags=["notices"])


@router.get(
    "/notices",
    response_model=Page[NoticeSummaryOut],
    summary="政策文件与通知公告",
    description="公众端“政策文件”“通知公告”：已发布的公告，可按类别查询，新发布的在前。无需登录。",
    response_description="一页公告",
)
async def listing(
    session: ReadSessionDep, paging: Paging, kind: Literal["policy", "guide", "notice"] | None = None
) -> Page[NoticeSummaryOut]:
    query = select(Notice)
    if kind:
        query = query.where(col(Notice.kind) == kind)
    query = query.order_by(col(Notice.published_at).desc(), col(Notice.id))
    total, rows = await paginate(session, query, paging)
    return Page[NoticeSummaryOut](
        items=[NoticeSummaryOut.model_validate(r) for r in rows], total=total, **paging.echo()
    )


@router.get(
    "/notices/{notice_id}",
    response_model=NoticeOut,
    summary="公告详情",
    description="公众查看一篇已发布的公告：正文与 PDF 附件（如有）。无需登录。",
    response_description="公告详情",
    responses=problems(errors.notice_not_found),
)
async def detail(notice: PublicNotice) -> NoticeOut:
    return NoticeOut.model_validate(notice)


@router.get(
    "/notices/{notice_id}/attachment",
    summary="下载公告附件（PDF）",
    description="公众下载一篇已发布公告的 PDF 附件。无需登录。",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "公告附件（PDF）"},
        **problems(errors.notice_not_found, errors.attachment_not_found),
    },
)
async def attachment(notice: PublicNotice, clients: ClientsDep) -> Response:
    if not notice.attachment_file_id:
        raise errors.attachment_not_found()
    upstream = await clients.get("identity", f"/internal/files/{notice.attachment_file_id}/content")
    if upstream.status_code != 200:
        raise errors.attachment_not_found()
    return Response(
        content=upstream.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition(notice.attachment_name or "附件.pdf", "attachment"),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/admin/notices",
    response_model=NoticeOut,
    status_code=201,
    summary="发布公告",
    description=(
        "管理员发布政策文件或通知公告：标题、类别、正文（HTML，发布前清理不安全的标记）和/或本人上传的"
        " PDF 附件；记入操作日志。"
    ),
    response_description="已发布的公告",
    responses=problems(errors.notice_empty, *check_problems("attachment_file_id", required=False)),
)
async def create(body: NoticeIn, admin: AdminUser, session: SessionDep, clients: ClientsDep) -> NoticeOut:
    notice = await service.create(session, clients, admin, body)
    out = NoticeOut.model_validate(notice)
    await session.commit()
    return out


@router.put(
    "/admin/notices/{notice_id}",
    response_model=NoticeOut,
    summary="修改公告",
    description="管理员修改一篇公告的标题、类别、正文或附件；记入操作日志。",
    response_description="修改后的公告",
    responses=problems(
        errors.notice_not_found, errors.notice_empty, *check_problems("attachment_file_id", required=False)
    ),
)
async def edit(
    body: NoticeIn, notice: AdminNotice, admin: AdminUser, session: SessionDep, clients: ClientsDep
) -> NoticeOut:
    await service.edit(session, clients, notice, admin, body)
    out = NoticeOut.model_validate(notice)
    await session.commit()
    return out


@router.delete(
    "/admin/notices/{notice_id}",
    status_code=204,
    summary="撤下公告",
    description="管理员撤下一篇公告，公众端不再显示；记入操作日志。",
    response_description="已撤下",
    responses=problems(errors.notice_not_found),
)
async def withdraw(notice: AdminNotice, admin: AdminUser, session: SessionDep) -> Response:
    await service.withdraw(session, notice, admin)
    await session.commit()
    return Response(status_code=204)
