"""The gateway: the only public entry.

Routes /api/v1/* to the services by a prefix table, checks JWTs before forwarding, rate
limits per address and per user (shared across replicas), gives every request an id, and
serves the merged OpenAPI (/docs), portal statistics and the composed staff audit log.

Run: ``uvicorn --factory gateway.main:create_app --port 8000``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from common import registry, tracing
from common.app import ReadinessReport, freeze_startup_heap, health_router
from common.auth import KeySet, StaffUser, TokenVerifier
from common.datetimes import Moment
from common.db import Database, migrate
from common.errors import install_error_handlers
from common.http import BodySizeLimitMiddleware, RequestContextMiddleware
from common.logging import configure_logging
from common.openapi import install_problem_docs, operation_id, problems
from common.serving import RequestLimitsMiddleware
from gateway import errors
from gateway.compose import Composer
from gateway.config import Settings
from gateway.proxy import AiohttpForwarder, Forwarder, GatewayProxy, Upstreams
from gateway.ratelimit import RateLimiter

MIGRATIONS = Path(__file__).parent / "migrations"

router = APIRouter(prefix="/api/v1", tags=["gateway"])


@router.get(
    "/portal/stats",
    summary="门户统计（公众端首页）",
    description=(
        "公众端首页的统计数字（入驻服务机构、服务产品、企业、订单与补贴金额等），由网关向各服务汇总并短时缓存；"
        "暂时无法回答的服务保留上次的数字（或为 null）并列在 stale 中。无需登录。"
    ),
    response_description="各项统计数字及未能更新的服务（stale）",
    responses=problems(errors.rate_limited(1)),
)
async def portal_stats(request: Request) -> dict[str, Any]:
    composer: Composer = request.app.state.composer
    return await composer.portal_stats()


@router.get(
    "/admin/audit-log",
    summary="平台人员操作日志（汇总各服务）",
    description=(
        "平台人员查看各服务记录的操作日志（审核、暂停、支付确认等），按时间倒序汇总，可按服务、操作人、操作"
        "与起始时间筛选；网关先向身份服务确认调用者的登录仍然有效。暂时无法回答的服务列在 stale 中。"
    ),
    response_description="一页操作记录及未能读取的服务（stale）",
    responses=problems(errors.service_unavailable, errors.rate_limited(1)),
)
async def audit_log(
    request: Request,
    user: StaffUser,
    service: str | None = Query(default=None, max_length=20),
    actor: str | None = Query(default=None, max_length=64),
    action: str | None = Query(default=None, max_length=60),
    since: Moment | None = None,
    page: int = Query(default=1, ge=1, le=10_000),
    page_size: int = Query(default=20, ge=1, le=100),
) -> dict[str, Any]:
    composer: Composer = request.app.state.composer
    # A staff member deactivated or demoted a moment ago still holds a signed token: identity,
    # which knows what it revoked, has the last word (common.access).
    await composer.confirm_caller(request.headers["authorization"])
    items, missing = await composer.audit_log(
        service=service, actor=actor, action=action, since=since, limit=page * page_size
    )
    start = (page - 1) * page_size
    return {
        "items": [e.model_dump(mode="json") for e in items[start : start + page_size]],
        "total": len(items),
        "page": page,
        "page_size": page_size,
        "stale": missing,
    }


def body_limit_for(settings: Settings, *, portal: bool) -> Callable[[str], int]:
    """The largest request body the gateway lets through to a path: what the route's service
    declared in the registry (uploads, quota's designation import), else MAX_BODY_BYTES for
    the API; the portal's pages (its forms upload receipts and proofs) GATEWAY_WEB_MAX_BODY_BYTES."""
    api = registry.API_PREFIX + "/"

    def limit_for(path: str) -> int:
        if path.startswith(api):
            declared = registry.body_limit(path[len(registry.API_PREFIX) :])
            return settings.max_body_bytes if declared is None else declared
        if portal and not path.startswith("/api/"):
            return settings.web_max_body_bytes
        return settings.max_body_bytes

    return limit_for


def create_app(
    settings: Settings | None = None,
    *,
    upstreams: Upstreams | None = None,
    key_set: KeySet | None = None,
    database: Database | None = None,
    portal: Forwarder | None = None,
) -> FastAPI:
    """``upstreams``/``key_set``/``portal`` are given by the all-in-one launcher (in-process
    services and portal)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # Before the forwarders make their aiohttp sessions (their requests carry traceparent);
    # off unless OTEL_EXPORTER_OTLP_ENDPOINT names a collector (common.tracing).
    tracing.setup_tracing("gateway", settings)
    upstreams = upstreams or Upstreams.over_http(
        settings.upstreams(),
        timeout=settings.upstream_timeout,
        connect_timeout=settings.upstream_connect_timeout,
        max_connections=settings.upstream_max_connections,
        stream_idle_timeout=settings.upstream_stream_idle_timeout,
        max_streams=settings.upstream_max_streams,
    )
    if portal is None and settings.web_url:
        portal = AiohttpForwarder(
            settings.web_url.rstrip("/"),
            timeout=settings.upstream_timeout,
            connect_timeout=settings.upstream_connect_timeout,
            max_connections=settings.upstream_max_connections,
            stream_idle_timeout=settings.upstream_stream_idle_timeout,
            max_streams=settings.upstream_max_streams,
        )
    db = database or Database(
        settings.db_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        read_pool_size=settings.db_read_pool_size,
    )
    keys = key_set or KeySet(settings.jwks_url)
    verifier = TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    limiter = RateLimiter(
        db, window_seconds=settings.rate_limit_window_seconds, sync_interval=settings.rate_limit_sync_interval
    )
    composer = Composer(
        upstreams.clients, settings.service_token_secret, stats_ttl=settings.stats_cache_seconds
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations:
            await migrate(MIGRATIONS, settings.db_url)
        limiter.start()
        freeze_startup_heap()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await limiter.stop()
            await upstreams.aclose()
            if portal is not None:
                await portal.aclose()
            await db.dispose()

    app = FastAPI(
        title="广西制造业企业培优育强服务券管理平台 API",
        description="公众端、企业端、服务机构端与管理端的统一接口（经网关）。错误均为 RFC 9457 problem+json。",
        version="1.0.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.token_verifier = verifier
    app.state.composer = composer
    app.state.limiter = limiter
    app.state.ready = False
    install_error_handlers(app)
    install_problem_docs(app)
    app.include_router(router)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(await composer.openapi(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="服务券平台 API")

    async def readiness(_request: Request) -> ReadinessReport:
        checks = {"database": await db.ping(), "started": bool(app.state.ready)}
        return ReadinessReport(all(checks.values()), checks)

    app.include_router(health_router(readiness, before_metrics=None))

    # Outermost first: request ids -> proxy (with the body limits of what it forwards, counted
    # as the bodies stream) -> body limit -> the gateway's own routes.
    body_limits = body_limit_for(settings, portal=portal is not None)
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes, limit_for=body_limits)
    app.add_middleware(
        GatewayProxy,
        upstreams=upstreams,
        verifier=verifier,
        limiter=limiter,
        per_ip=settings.rate_limit_per_ip,
        per_user=settings.rate_limit_per_user,
        per_ip_tight={
            "face_return": settings.rate_limit_face_return_per_ip,
            "contract_verify": settings.rate_limit_contract_verify_per_ip,
        },
        trusted_proxy_hops=settings.trusted_proxy_hops,
        development=settings.is_development,
        portal=portal,
        body_limit_for=body_limits,
    )
    guarded = settings.guarded_paths
    if "/docs" in guarded:  # the merged OpenAPI goes with the docs
        guarded["/openapi.json"] = None
    app.add_middleware(RequestContextMiddleware, service="gateway", guarded=guarded)
    # Outermost: a request target or header block too large is a 414/431 problem before
    # anything reads it (the HTTP protocol common.serving gives uvicorn stops larger ones).
    app.add_middleware(RequestLimitsMiddleware)
    # Outermost of all: the request's SERVER span (when tracing is on), a new trace whatever
    # context the caller sent (the public edge).
    tracing.instrument_app(app, edge=True)
    return app
