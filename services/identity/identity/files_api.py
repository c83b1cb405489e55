"""Files: uploads (PDF/JPG/PNG judged by their bytes), downloads for those allowed to read
them, and the internal endpoints other services use to check a file and grant a
counterparty access to it."""

from __future__ import annotations

import hashlib
from typing import Annotated

import structlog
from fastapi import APIRouter, File, Response, UploadFile
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import select

from common.app import SessionDep
from common.auth import CurrentUser, InternalCaller
from common.errors import Problem
from common.storage import sniff_content_type
from common.timers import utcnow
from identity import org_domain, org_service
from identity.deps import Ctx
from identity.models import FileGrant, Organization, StoredFile, new_id
from identity.org_schemas import FileMetaOut, FileOut, GrantIn

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/files", tags=["files"])
internal_router = APIRouter(prefix="/internal/files", tags=["internal"])

ALLOWED_TYPES = ("application/pdf", "image/jpeg", "image/png")


def file_not_found() -> Problem:
    return Problem(404, "file_not_found", "文件不存在或无权查看")


def file_out(row: StoredFile) -> FileOut:
    return FileOut(
        file_id=row.id, name=row.name, content_type=row.content_type, size=row.size, sha256=row.sha256
    )


@router.post("", response_model=FileOut, status_code=201, summary="上传文件（PDF/JPG/PNG）")
async def upload(
    principal: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="PDF, JPG or PNG; judged by its bytes")],
) -> FileOut:
    user = await org_service.active_user(session, principal)
    limit = ctx.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise Problem(
            413, "file_too_large", f"文件大小不能超过 {org_domain.human_size(limit)}", max_bytes=limit
        )
    if not data:
        raise Problem(
            422,
            "empty_file",
            "文件内容为空，请重新选择文件",
            errors=[{"field": "file", "message": "文件内容为空"}],
        )
    content_type = sniff_content_type(data)
    if content_type not in ALLOWED_TYPES:
        raise Problem(415, "unsupported_file_type", "仅支持上传 PDF、JPG、PNG 格式的文件")
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
    response_class=Response,
    responses={200: {"content": {t: {} for t in ALLOWED_TYPES}, "description": "the file's bytes"}},
)
async def download(file_id: str, principal: CurrentUser, session: SessionDep, ctx: Ctx) -> Response:
    user = await org_service.active_user(session, principal)
    row = await session.get(StoredFile, file_id[:36])
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
            "Content-Disposition": org_domain.content_disposition(row.name, "attachment"),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{row.sha256}"',
        },
    )


# --- internal (service token; the gateway never routes /internal/) -----------------------------


@internal_router.get("/{file_id}", response_model=FileMetaOut, summary="（内部）文件信息")
async def file_meta(file_id: str, _caller: InternalCaller, session: SessionDep) -> FileMetaOut:
    row = await session.get(StoredFile, file_id[:36])
    if row is None:
        raise file_not_found()
    return FileMetaOut(
        file_id=row.id,
        organization_id=row.organization_id,
        uploader_id=row.uploader_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
    )


@internal_router.post("/{file_id}/grants", status_code=204, summary="（内部）允许交易对方查看文件")
async def grant_access(file_id: str, body: GrantIn, caller: InternalCaller, session: SessionDep) -> Response:
    if await session.get(StoredFile, file_id[:36]) is None:
        raise file_not_found()
    if await session.get(Organization, body.organization_id) is None:
        raise Problem(404, "organization_not_found", "组织不存在")
    await session.execute(
        pg_insert(FileGrant)
        .values(
            file_id=file_id[:36],
            organization_id=body.organization_id,
            granted_by=caller[:40],
            reason=body.reason,
        )
        .on_conflict_do_nothing()
    )
    await session.commit()
    return Response(status_code=204)
