"""identity: accounts, captcha, SMS codes, sign-in, JWT issuing, organisations,
certification, agents, bank accounts, identity verification, files, staff and roles.

Run: ``uvicorn --factory identity.main:create_app --port 8001``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from common.app import ServiceRuntime, create_service_app
from common.audit import internal_audit_router
from common.auth import KeySet
from common.bus.transport import Transport
from identity import dev, internal
from identity.api import admin, auth, files, organizations, reference, verifications
from identity.bootstrap import build_context, ensure_administrator
from identity.config import Settings
from identity.handlers import build_consumer
from identity.seed import seed_demo

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
    routers = [
        auth.router,
        auth.jwks_router,
        organizations.router,
        reference.router,
        verifications.router,
        verifications.returns,
        files.router,
        admin.router,
        internal.router,
        internal_audit_router("identity"),
    ]
    if settings.is_development:
        routers.append(dev.router)
    app = create_service_app(
        runtime,
        title="identity",
        description="账号、图形验证码、短信验证码、登录、企业认证、经办人、支付认证（行政区划与开户支行查询）、人脸认证、文件、平台人员",
        routers=routers,
        body_limit_overrides={"/api/v1/files": settings.max_upload_bytes + 64 * 1024},
    )

    async def start(rt: ServiceRuntime) -> None:
        ctx = await build_context(rt)
        app.state.identity = ctx
        if settings.admin_phone and settings.admin_password:
            await ensure_administrator(
                ctx, rt, settings.admin_phone, settings.admin_password, settings.admin_name
            )
        if settings.seed_demo:
            app.state.demo_accounts = await seed_demo(ctx, rt)

    async def stop(_rt: ServiceRuntime) -> None:
        ctx = getattr(app.state, "identity", None)
        if ctx is not None:
            ctx.close()

    runtime.on_start.append(start)
    runtime.on_stop.append(stop)
    return app
