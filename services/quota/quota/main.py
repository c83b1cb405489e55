"""quota: 服务券：年度活动、企业划型、配额申请与审核、服务券及其台账.

Run: ``uvicorn --factory quota.main:create_app --port 8002``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from quota import internal
from quota.config import Settings
from quota.handlers import build_consumer

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: Settings | None = None,
    *,
    transport: Transport | None = None,
    key_set: KeySet | None = None,
    peers: dict[str, Any] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings,
        migrations_dir=MIGRATIONS,
        consumer=build_consumer(),
        transport=transport,
        key_set=key_set,
        peers=peers,
    )
    return create_service_app(
        runtime,
        title="quota",
        description="服务券：年度活动、企业划型、配额申请与审核、服务券及其台账",
        routers=[internal.router, internal_audit_router("quota")],
    )
