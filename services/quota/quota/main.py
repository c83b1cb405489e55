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
from quota import api, internal
from quota.config import Settings
from quota.handlers import build_consumer
from quota.seed import seed_demo
from quota.timers import timer_handlers

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
        consumer=build_consumer(settings),
        timer_handlers=timer_handlers(settings),
        transport=transport,
        key_set=key_set,
        peers=peers,
    )

    async def seed(rt: ServiceRuntime) -> None:
        async with rt.db.transaction() as session:
            await seed_demo(session)

    if settings.seed_demo:
        runtime.on_start.append(seed)
    return create_service_app(
        runtime,
        title="quota",
        description="服务券：年度活动、企业划型、配额申请与审核、服务券及其台账",
        routers=[*api.routers(), internal.router, internal_audit_router("quota")],
        body_limit_overrides={f"{api.PREFIX}/admin/designations/import": settings.import_max_bytes},
    )
