"""payments: 支付计划、对公转账及到账核实、服务券兑付与结算、退款.

Run: ``uvicorn --factory payments.main:create_app --port 8006``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from payments import internal
from payments.api import refunds, remittances, settlements
from payments.config import Settings
from payments.handlers import build_consumer

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
        title="payments",
        description="支付计划、对公转账及到账核实、服务券兑付与结算、退款",
        routers=[
            remittances.router,
            settlements.router,
            refunds.router,
            internal.router,
            internal_audit_router("payments"),
        ],
    )
