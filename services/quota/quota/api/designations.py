"""Designation lists: reviewers import USCC + designation from CSV or XLSX."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from common.app import SessionDep
from common.audit import audit
from common.auth import ReviewerUser
from common.openapi import problems
from quota import errors
from quota.deps import CurrentCampaign
from quota.domain.designations import known_designations
from quota.schemas.designations import ImportOut
from quota.service.designations import import_rows, rows_of

router = APIRouter(prefix="/api/v1", tags=["designations"])


@router.post(
    "/admin/designations/import",
    response_model=ImportOut,
    summary="导入企业划型名单",
    description=(
        "审核人员上传企业划型名单（CSV 或 XLSX，两列：统一社会信用代码、企业类型），用于通用券按档次核定。"
        "可识别的行导入（同一企业再次导入即更新），其余行逐行列出原因；记入操作日志。"
    ),
    response_description="导入结果：成功行数与被拒绝的行",
    responses=problems(errors.no_campaign, errors.import_unreadable("不是有效的 XLSX 文件")),
)
async def import_designations(
    staff: ReviewerUser,
    session: SessionDep,
    campaign: CurrentCampaign,
    file: Annotated[
        UploadFile, File(description="CSV（UTF-8 或 GBK/GB18030）或 XLSX：统一社会信用代码, 企业类型")
    ],
) -> ImportOut:
    known = known_designations(campaign.tiers)
    rows = rows_of(file.file, file.filename or "")
    report = await import_rows(session, rows, known)
    audit(
        session,
        staff,
        "designations.import",
        "designation_list",
        file.filename or "upload",
        accepted=report.accepted,
        rejected=report.rejected_total,
    )
    await session.commit()
    return ImportOut.model_validate(
        {"accepted": report.accepted, "rejected": report.rejected, "rejected_total": report.rejected_total}
    )
