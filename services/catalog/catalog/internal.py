"""/internal/ routers (service token; the gateway never routes them)."""

from __future__ import annotations

from fastapi import APIRouter

from common.app import SessionDep
from common.auth import InternalCaller

router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


@router.get("/stats")
async def stats(_caller: InternalCaller, session: SessionDep) -> dict[str, int]:
    """The portal figures catalog owns (common.registry: products)."""
    return {
        "products": 0,
    }
