"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import col, select

from common.app import SessionDep
from common.auth import InternalCaller
from common.reads import PortalStats
from demands.domain.demands import Status
from demands.models import Demand

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats, summary="（内部）门户统计数字")
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures demands owns (common.registry: published_demands)."""
    published = (await session.exec(select(func.count()).where(col(Demand.status) == Status.PUBLISHED))).one()
    return PortalStats({"published_demands": int(published)})
