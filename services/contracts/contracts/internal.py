"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import col, select

from common.app import SessionDep
from common.auth import InternalCaller
from common.reads import PortalStats
from contracts.models import Contract

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats)
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures contracts owns (common.registry: signed_contracts): every contract
    both parties signed (a later termination does not unsign it)."""
    signed = (await session.exec(select(func.count()).where(col(Contract.signed_at).is_not(None)))).one()
    return PortalStats({"signed_contracts": int(signed)})
