"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import InternalCaller

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats")
async def stats(_caller: InternalCaller, session: SessionDep) -> dict[str, int]:
    """The portal figures quota owns (common.registry: enterprises_with_quota, quota_total_fen, pending_budget_fen, deducted_fen)."""
    return {
        "enterprises_with_quota": 0,
        "quota_total_fen": 0,
        "pending_budget_fen": 0,
        "deducted_fen": 0,
    }
