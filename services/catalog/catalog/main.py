"""catalog: 服务机构入驻、服务产品及审核、公众端产品列表、搜索与排序、我的收藏.

Run: ``uvicorn --factory catalog.main:create_app --port 8003``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from catalog import api, internal
from catalog.config import Settings
from catalog.handlers import build_consumer
from catalog.seed import seed_demo
from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport

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
    app = create_service_app(
        runtime,
        title="catalog",
        description="服务机构入驻、服务产品及审核、公众端产品列表、搜索与排序、我的收藏",
        routers=[*api.ROUTERS, internal.router, internal_audit_router("catalog")],
    )

    async def start(rt: ServiceRuntime) -> None:
        if settings.seed_demo:
            await seed_demo(rt)

    runtime.on_start.append(start)
    return app
