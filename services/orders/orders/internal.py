"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import InternalCaller
from common.reads import PortalStats

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats", response_model=PortalStats)
async def stats(_caller: InternalCaller, session: SessionDep) -> PortalStats:
    """The portal figures orders owns (common.registry: none)."""
    return PortalStats({})
