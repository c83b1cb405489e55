"""demands: 企业需求与我要对接、我要留言、通知公告与政策文件、站内通知.

Run: ``uvicorn --factory demands.main:create_app --port 8007``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from demands import api, internal
from demands.config import Settings
from demands.handlers import build_consumer
from demands.live import NotificationFeed
from demands.seed import seed_demo

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
        title="demands",
        description="企业需求与我要对接、我要留言、通知公告与政策文件、站内通知",
        routers=[*api.routers(), internal.router, internal_audit_router("demands")],
    )

    feed = NotificationFeed(
        runtime.db, poll_seconds=settings.notifications_poll_seconds, listen=settings.notifications_listen
    )
    app.state.notification_feed = feed

    async def start(rt: ServiceRuntime) -> None:
        if settings.seed_demo:
            await seed_demo(rt)
        await feed.start()

    async def stop(_rt: ServiceRuntime) -> None:
        await feed.stop()

    runtime.on_start.append(start)
    runtime.on_stop.append(stop)
    return app
