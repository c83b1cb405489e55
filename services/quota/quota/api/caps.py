"""Providers' general-subsidy caps (administrators, with a recorded reason)."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import AdminUser
from common.numbers import shanghai_now
from common.openapi import problems
from quota import errors
from quota.deps import SettingsDep
from quota.schemas.caps import CapIn, CapOut
from quota.service.caps import set_cap

router = APIRouter(prefix="/api/v1", tags=["provider-caps"])


@router.put(
    "/admin/providers/{org_id}/subsidy-cap",
    response_model=CapOut,
    summary="调整服务机构年度补贴上限",
    description=(
        "管理员调整某服务机构某年度（默认本年度）可获得的通用券补贴上限（默认 500 万元），须填写理由，"
        "记入操作日志；新上限不能低于该机构本年度已占用的补贴额度。"
    ),
    response_description="调整后的年度补贴上限",
    responses=problems(errors.cap_below_usage(0)),
)
async def put_cap(
    org_id: str, body: CapIn, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> CapOut:
    year = body.year or shanghai_now().year
    cap = await set_cap(
        session, admin, org_id, year, body.cap_fen, body.reason, settings.default_provider_cap_fen
    )
    result = CapOut.model_validate(cap)
    await session.commit()
    return result
