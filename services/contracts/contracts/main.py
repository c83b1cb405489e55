"""contracts: 合同拟定、退回与同意、电子签章、签署、合同 PDF.

Run: ``uvicorn --factory contracts.main:create_app --port 8005``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from contracts import internal
from contracts.config import Settings
from contracts.handlers import build_consumer

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
        title="contracts",
        description="合同拟定、退回与同意、电子签章、签署、合同 PDF",
        routers=[internal.router, internal_audit_router("contracts")],
    )
