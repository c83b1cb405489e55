"""Internal reads for the gateway's portal statistics."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import col, select

from common.app import SessionDep
from common.auth import InternalCaller
from identity.models import Organization

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats")
async def stats(_caller: InternalCaller, session: SessionDep) -> dict[str, int]:
    """已有 N 家企业入驻平台 / 已有 N 家服务机构入驻平台服务 (the portal's first two figures)."""
    enterprises = (
        await session.exec(select(func.count()).where(col(Organization.certified_at).is_not(None)))
    ).one()
    providers = (
        await session.exec(select(func.count()).where(col(Organization.is_provider).is_(True)))
    ).one()
    return {"enterprises": int(enterprises), "providers": int(providers)}
