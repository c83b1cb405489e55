"""The enterprise pages."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from web.deps import EnterprisePortal

router = APIRouter()


@router.get("/me", response_class=HTMLResponse)
async def center(portal: EnterprisePortal) -> HTMLResponse:
    """个人中心 (placeholder until the enterprise pages land)."""
    return portal.render("enterprise/center.html")
