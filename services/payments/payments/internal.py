"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import col, select

from common.app import SessionDep
from common.auth import InternalCaller
from common.reads import PortalStats
from payments.models import SettlementClaim

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats)
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures payments owns (common.registry: settled_fen): subsidies paid out."""
    settled = (
        await session.exec(
            select(func.coalesce(func.sum(SettlementClaim.amount_fen), 0)).where(
                col(SettlementClaim.state) == "paid"
            )
        )
    ).one()
    return PortalStats({"settled_fen": int(settled)})
