"""Files: uploads (PDF/JPG/PNG judged by their bytes) and downloads for those allowed to read
them. The endpoints other services use to check a file and grant a counterparty access to it
are in ``internal.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from common.app import ReadSessionDep, SessionDep
from common.http import content_disposition
from common.openapi import problems
from identity import errors
from identity.deps import Ctx, Id, ReadActiveUser, Uploader
from identity.domain.files import ALLOWED_TYPES
from identity.schemas.files import FileOut
from identity.service import files as service

router = APIRouter(prefix="/api/v1/files", tags=["files"])


@router.post(
    "",
    response_model=FileOut,
    status_code=201,
    summary="上传文件（PDF/JPG/PNG）",
    description=(
        "登录用户上传一个 PDF、JPG 或 PNG 文件（按文件内容判断类型），得到文件编号，用于配额申请凭证、"
        "结算发票、公告附件等；文件仅本单位（及业务对方经授权后）可下载。被暂停单位的用户不能上传。"
    ),
    response_description="已保存的文件（编号、名称、类型、大小、SHA-256）",
    responses=problems(
        errors.account_gone,
        errors.organization_suspended("资料不实"),
        errors.file_too_large(10 * 1024 * 1024, "10 MB"),
        errors.empty_file,
        errors.unsupported_file_type,
    ),
)
async def upload(
    user: Uploader,
    session: SessionDep,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="PDF, JPG or PNG; judged by its bytes")],
) -> FileOut:
    data = await file.read(ctx.settings.max_upload_bytes + 1)
    row = await service.store(session, ctx, user, file.filename, data)
    await session.commit()
    return service.file_out(row)


@router.get(
    "/{file_id}",
    summary="下载文件",
    description="下载一个文件：上传人、本单位成员、获授权的业务对方单位或平台人员可下载，其他人视为不存在。",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in ALLOWED_TYPES}, "description": "文件内容"},
        **problems(errors.account_gone, errors.file_not_found),
    },
)
async def download(file_id: Id, user: ReadActiveUser, session: ReadSessionDep, ctx: Ctx) -> Response:
    row, data = await service.read(session, ctx, user, file_id)
    return Response(
        content=data,
        media_type=row.content_type,
        headers={
            # Always a download, never rendered by the browser in the platform's origin.
            "Content-Disposition": content_disposition(row.name, "attachment"),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{row.sha256}"',
        },
    )
