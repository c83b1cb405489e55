"""identity's /internal/ endpoints (service token; the gateway never routes /internal/):
the portal's figures, an organisation as it is now (for a service whose copy is behind a
caller's token), and files other services check and share. The staff audit feed the gateway
composes is common's (``common.audit.internal_audit_router``, mounted in ``main``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import func
from sqlmodel import col, select

from common.app import ReadSessionDep, SessionDep
from common.auth import InternalCaller
from common.reads import FileGrant, FileMeta, OrganizationFacts, PortalStats
from identity import errors
from identity.deps import Ctx, Id
from identity.models import BankAccount, Organization, StoredFile
from identity.service import files

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats, summary="（内部）门户统计数字")
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """已有 N 家企业入驻平台 / 已有 N 家服务机构入驻平台服务 (the portal's first two figures)."""
    enterprises = (
        await session.exec(select(func.count()).where(col(Organization.certified_at).is_not(None)))
    ).one()
    providers = (
        await session.exec(select(func.count()).where(col(Organization.is_provider).is_(True)))
    ).one()
    return PortalStats({"enterprises": int(enterprises), "providers": int(providers)})


@router.get("/organizations/{org_id}", response_model=OrganizationFacts, summary="（内部）组织的当前状态")
async def organization(org_id: Id, _caller: InternalCaller, session: ReadSessionDep) -> OrganizationFacts:
    """Certified, provider, suspended now: common.orgs reads it when a service's copy is
    missing or older than the caller's token (the events are still in flight)."""
    org = await session.get(Organization, org_id)
    if org is None:
        raise errors.organization_not_found()
    return OrganizationFacts(
        org_id=org.id,
        name=org.name,
        uscc=org.uscc,
        kind=org.kind,
        certified=org.certified,
        provider=org.is_provider,
        suspended=org.suspended,
        suspended_reason=org.suspended_reason,
        bank_account=await session.get(BankAccount, org.id) is not None,
    )


# --- files ---------------------------------------------------------------------------------------


@router.get("/files/{file_id}", response_model=FileMeta, summary="（内部）文件信息")
async def file_meta(file_id: Id, _caller: InternalCaller, session: SessionDep) -> FileMeta:
    row = await session.get(StoredFile, file_id)
    if row is None:
        raise errors.file_not_found()
    return FileMeta(
        file_id=row.id,
        organization_id=row.organization_id,
        uploader_id=row.uploader_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        created_at=row.created_at,
    )


@router.get("/files/{file_id}/content", summary="（内部）文件内容")
async def file_content(file_id: Id, _caller: InternalCaller, session: SessionDep, ctx: Ctx) -> Response:
    """The bytes, for a service that publishes a file itself (demands: a notice's PDF, public
    to read once an administrator attached it)."""
    row = await session.get(StoredFile, file_id)
    if row is None:
        raise errors.file_not_found()
    try:
        data = await ctx.storage.get(row.storage_key)
    except FileNotFoundError:
        raise errors.file_not_found() from None
    return Response(content=data, media_type=row.content_type)


@router.post("/files/{file_id}/grants", status_code=204, summary="（内部）允许交易对方查看文件")
async def grant_access(file_id: Id, body: FileGrant, caller: InternalCaller, session: SessionDep) -> Response:
    await files.grant(session, file_id, body.organization_id, caller, body.reason)
    await session.commit()
    return Response(status_code=204)
