"""orders: 订单及其状态机、服务进度、服务评价；服务券流程的发起方.

Run: ``uvicorn --factory orders.main:create_app --port 8004``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from orders import api
from orders.config import Settings
from orders.handlers import build_consumer
from orders.timers import timer_handlers

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
        timer_handlers=dict(timer_handlers(settings)),
        transport=transport,
        key_set=key_set,
        peers=peers,
    )
    return create_service_app(
        runtime,
        title="orders",
        description="订单及其状态机、服务进度、服务评价；服务券流程的发起方",
        routers=[api.router, internal_audit_router("orders")],
    )
