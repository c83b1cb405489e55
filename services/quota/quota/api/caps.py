"""Providers' general-subsidy caps (administrators, with a recorded reason)."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import AdminUser
from common.numbers import shanghai_now
from quota.deps import SettingsDep
from quota.schemas import CapIn, CapOut
from quota.service.caps import set_cap

router = APIRouter(prefix="/api/v1", tags=["provider-caps"])


@router.put(
    "/admin/providers/{org_id}/subsidy-cap", response_model=CapOut, summary="调整服务机构年度补贴上限"
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
