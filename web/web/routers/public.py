"""公众端: what anyone may see without signing in (the home page, product lists and details,
providers, the 企业需求 board, notices)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from web.client import ApiError
from web.deps import Portal, PortalDep

router = APIRouter()


async def _quiet(portal: Portal, path: str, default: Any, **params: Any) -> Any:
    """A part of a page that may fail without failing the page (a figure, a ticker)."""
    try:
        return await portal.api.get(path, **params)
    except ApiError:
        return default


@router.get("/", response_class=HTMLResponse)
async def home(portal: PortalDep) -> HTMLResponse:
    stats, campaign, demands, notices = await asyncio.gather(
        _quiet(portal, "/portal/stats", {}),
        _quiet(portal, "/campaigns/current", None),
        _quiet(portal, "/demands", {"items": []}, page_size=5),
        _quiet(portal, "/notices", {"items": []}, page_size=10),
    )
    return portal.render(
        "public/home.html", stats=stats, campaign=campaign, demands=demands["items"], notices=notices["items"]
    )
