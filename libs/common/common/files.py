"""Checking the files a request names (identity's ``POST /files``), where they are used.

A request that names proof files, receipts or invoices names them by id; the service checks
each through identity's ``GET /internal/files/{id}``: it exists, it belongs to the caller's
organisation, and it is one of the accepted types (identity judges the type by the bytes).
A deal's counterparty or reviewers may then be granted read access
(``POST /internal/files/{id}/grants``).
"""

from __future__ import annotations

from collections.abc import Sequence

from common.errors import Problem
from common.errors import file_grant_failed as file_grant_failed
from common.errors import file_problem as file_problem
from common.internal import ServiceClients
from common.reads import FileGrant
from common.reads import FileMeta as FileMeta

DOCUMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")


def check_problems(field: str, *, required: bool = True) -> list[Problem]:
    """What :func:`check_files` may refuse, for a route's ``responses=problems(...)``."""
    found = [
        file_problem(field, "file_duplicated", "同一文件不能重复提交"),
        file_problem(field, "file_unknown", "文件 … 不存在"),
        file_problem(field, "file_not_owned", "文件 … 不属于贵单位"),
        file_problem(field, "file_type_not_allowed", "文件 … 的类型不符合要求"),
    ]
    if required:
        found.insert(0, file_problem(field, "files_required", "请上传所需的文件"))
    return found


async def check_files(
    clients: ServiceClients,
    file_ids: Sequence[str],
    *,
    org_id: str | None,
    field: str,
    required: bool = True,
    allowed_types: Sequence[str] = DOCUMENT_TYPES,
) -> list[FileMeta]:
    """The files' metadata when every one exists, is ``org_id``'s and of an allowed type."""
    if required and not file_ids:
        raise file_problem(field, "files_required", "请上传所需的文件")
    if len(set(file_ids)) != len(file_ids):
        raise file_problem(field, "file_duplicated", "同一文件不能重复提交")
    metas: list[FileMeta] = []
    for file_id in file_ids:
        meta = await clients.read("identity", f"/internal/files/{file_id}", FileMeta)
        if meta is None:
            raise file_problem(field, "file_unknown", f"文件 {file_id} 不存在")
        if org_id is None or meta.organization_id != org_id:
            raise file_problem(field, "file_not_owned", f"文件 {file_id} 不属于贵单位")
        if meta.content_type not in allowed_types:
            raise file_problem(field, "file_type_not_allowed", f"文件 {file_id} 的类型不符合要求")
        metas.append(meta)
    return metas


async def grant_files(
    clients: ServiceClients, file_ids: Sequence[str], organization_id: str, reason: str
) -> None:
    """Let ``organization_id`` (a deal's counterparty) read these files."""
    for file_id in file_ids:
        response = await clients.post(
            "identity",
            f"/internal/files/{file_id}/grants",
            FileGrant(organization_id=organization_id, reason=reason[:200]).model_dump(mode="json"),
        )
        if response.status_code >= 400:
            raise file_grant_failed()
