"""Files on a session: an upload stored (the bytes first, then the row), a file read by
someone allowed to, and a counterparty granted access (for another service). Never commits."""

from __future__ import annotations

import hashlib

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.storage import sniff_content_type
from common.timers import utcnow
from identity import errors
from identity.context import IdentityContext
from identity.domain import files as domain
from identity.models import FileGrant, Organization, StoredFile, User, new_id
from identity.schemas.files import FileOut

log = structlog.get_logger(__name__)


def file_out(row: StoredFile) -> FileOut:
    return FileOut(
        file_id=row.id, name=row.name, content_type=row.content_type, size=row.size, sha256=row.sha256
    )


async def store(
    session: AsyncSession, ctx: IdentityContext, user: User, name: str | None, data: bytes
) -> StoredFile:
    """An upload of ``user``'s (``data``: at most one byte more than the limit was read),
    when it is a PDF, JPG or PNG by its bytes: the bytes stored, then the row added."""
    limit = ctx.settings.max_upload_bytes
    if len(data) > limit:
        raise errors.file_too_large(limit, domain.human_size(limit))
    if not data:
        raise errors.empty_file()
    content_type = sniff_content_type(data)
    if content_type not in domain.ALLOWED_TYPES:
        raise errors.unsupported_file_type()
    assert content_type is not None
    now = utcnow()
    file_id = new_id()
    row = StoredFile(
        id=file_id,
        organization_id=user.organization_id,
        uploader_id=user.id,
        name=domain.clean_file_name(name, content_type),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=f"files/{now:%Y}/{now:%m}/{file_id}",  # nothing the user typed
    )
    # The bytes first: a row never names a file that is not there (a failed commit leaves an
    # orphan blob, which is harmless).
    await ctx.storage.put(row.storage_key, data, content_type)
    session.add(row)
    return row


async def read(
    session: AsyncSession, ctx: IdentityContext, user: User, file_id: str
) -> tuple[StoredFile, bytes]:
    """The file and its bytes, for its uploader, its organisation, an organisation it was
    granted to, or staff; ``file_not_found`` for anyone else (never told that it exists)."""
    row = await session.get(StoredFile, file_id)
    if row is None:
        raise errors.file_not_found()
    granted = set(
        (await session.exec(select(FileGrant.organization_id).where(FileGrant.file_id == row.id))).all()
    )
    reader = domain.Reader(user_id=user.id, role=user.role, org_id=user.organization_id)
    if not domain.may_read_file(
        reader, file_org_id=row.organization_id, uploader_id=row.uploader_id, granted_org_ids=granted
    ):
        raise errors.file_not_found()  # never tell that it exists
    try:
        data = await ctx.storage.get(row.storage_key)
    except FileNotFoundError:
        log.error("file_bytes_missing", file_id=row.id)
        raise errors.file_not_found() from None
    return row, data


async def grant(
    session: AsyncSession, file_id: str, org_id: str, granted_by: str, reason: str | None
) -> None:
    """The organisation may read the file from now on (a deal's counterparty, asked by the
    service of the deal); granted once, a second grant changes nothing."""
    if await session.get(StoredFile, file_id) is None:
        raise errors.file_not_found()
    if await session.get(Organization, org_id) is None:
        raise errors.organization_not_found()
    await session.execute(
        pg_insert(FileGrant)
        .values(file_id=file_id, organization_id=org_id, granted_by=granted_by[:40], reason=reason)
        .on_conflict_do_nothing()
    )
