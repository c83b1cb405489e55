"""Files: uploads (PDF/JPG/PNG judged by their bytes), downloads for those allowed to read
them, and the internal endpoints other services use to check a file and grant a
counterparty access to it."""

from __future__ import annotations

import hashlib
from typing import Annotated

import structlog
from fastapi import APIRouter, File, Response, UploadFile
from sqlmodel import select

from common.app import SessionDep
from common.errors import Problem
from common.http import content_disposition
from common.openapi import problems
from common.storage import sniff_content_type
from common.timers import utcnow
from identity import errors
from identity.deps import ActiveUser, Ctx, Id, Uploader
from identity.domain import files as org_domain
from identity.models import FileGrant, StoredFile, new_id
from identity.schemas.files import FileOut

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/files", tags=["files"])

ALLOWED_TYPES = ("application/pdf", "image/jpeg", "image/png")


def file_not_found() -> Problem:
    return errors.file_not_found()


def file_out(row: StoredFile) -> FileOut:
    return FileOut(
        file_id=row.id, name=row.name, content_type=row.content_type, size=row.size, sha256=row.sha256
    )


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
    limit = ctx.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise errors.file_too_large(limit, org_domain.human_size(limit))
    if not data:
        raise errors.empty_file()
    content_type = sniff_content_type(data)
    if content_type not in ALLOWED_TYPES:
        raise errors.unsupported_file_type()
    assert content_type is not None
    now = utcnow()
    file_id = new_id()
    row = StoredFile(
        id=file_id,
        organization_id=user.organization_id,
        uploader_id=user.id,
        name=org_domain.clean_file_name(file.filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=f"files/{now:%Y}/{now:%m}/{file_id}",  # nothing the user typed
    )
    # The bytes first: a row never names a file that is not there (a failed commit leaves an
    # orphan blob, which is harmless).
    await ctx.storage.put(row.storage_key, data, content_type)
    session.add(row)
    await session.commit()
    return file_out(row)


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
async def download(file_id: Id, user: ActiveUser, session: SessionDep, ctx: Ctx) -> Response:
    row = await session.get(StoredFile, file_id)
    if row is None:
        raise file_not_found()
    granted = set(
        (await session.exec(select(FileGrant.organization_id).where(FileGrant.file_id == row.id))).all()
    )
    reader = org_domain.Reader(user_id=user.id, role=user.role, org_id=user.organization_id)
    if not org_domain.may_read_file(
        reader, file_org_id=row.organization_id, uploader_id=row.uploader_id, granted_org_ids=granted
    ):
        raise file_not_found()  # never tell that it exists
    try:
        data = await ctx.storage.get(row.storage_key)
    except FileNotFoundError:
        log.error("file_bytes_missing", file_id=row.id)
        raise file_not_found() from None
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
