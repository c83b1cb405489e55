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
from contracts.api import contracts, seals
from contracts.config import Settings
from contracts.context import ContractsContext
from contracts.handlers import build_consumer
from contracts.service.seals import load_signing_ca

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
    ctx = ContractsContext(settings)
    app = create_service_app(
        runtime,
        title="contracts",
        description="合同拟定、退回与同意、电子签章、签署、合同 PDF",
        # seals first: GET /contracts/signing-ca is not GET /contracts/{contract_id}
        routers=[
            seals.router,
            contracts.router,
            contracts.admin_router,
            internal.router,
            internal_audit_router("contracts"),
        ],
        # The uploaded PDF and its multipart framing; the route refuses a file over the limit.
        body_limit_overrides={"/api/v1/contracts/verify": settings.verify_max_bytes + 64 * 1024},
    )
    app.state.contracts = ctx

    async def start(rt: ServiceRuntime) -> None:
        async with rt.db.transaction() as session:
            ctx.ca = await load_signing_ca(session, ctx)

    runtime.on_start.append(start)
    return app
