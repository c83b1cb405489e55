"""quota's public routers (below /api/v1), one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from quota.api import applications, campaigns, caps, designations, vouchers

PREFIX = "/api/v1"


def routers() -> list[APIRouter]:
    return [campaigns.router, vouchers.router, applications.router, designations.router, caps.router]
