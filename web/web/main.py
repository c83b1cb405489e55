"""The portal (门户): server-rendered pages for enterprises, providers and platform staff.

A client of the gateway's public API like the mini-program: it owns no database, reads no
service directly and consumes no event. Distributed, it is its own process and the gateway
forwards every path outside /api/v1 to it; all-in-one, the launcher makes it in the
gateway's process with an in-process transport to the gateway.

Run: ``uvicorn --factory web.main:create_app --port 8008``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.http import RequestContextMiddleware
from common.logging import configure_logging
from web import formatting, labels
from web.client import ApiClient, ApiError, NotSignedIn
from web.config import Settings
from web.deps import CsrfFailed, FormInvalid, NotAllowed, Portal
from web.routers import account, admin, enterprise, orders, provider, public
from web.session import SessionCodec, SessionMiddleware

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # Every script and style is the portal's own (no CDN: deployments may sit on an intranet).
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=HERE / "templates")
    formatting.install(t.env)
    t.env.globals.update(labels=labels)
    return t


def create_app(
    settings: Settings | None = None, *, api_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """``api_transport`` reaches the gateway in-process (all-in-one); else ``WEB_API_URL``."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json, service="web")
    api = ApiClient(settings.api_url, transport=api_transport, timeout=settings.api_timeout)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await api.aclose()

    app = FastAPI(title="服务券平台门户", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.api = api
    app.state.templates = templates()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (public, account, enterprise, provider, admin, orders):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return JSONResponse({"status": "ready"})

    install_error_pages(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response: Response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    app.add_middleware(
        SessionMiddleware,
        codec=SessionCodec(settings.session_secret, settings.session_max_age),
        cookie=settings.session_cookie,
        secure=settings.secure_cookies,
    )
    app.add_middleware(RequestContextMiddleware, service="web")
    return app


def install_error_pages(app: FastAPI) -> None:
    """What a person sees instead of a bare error: a sign-in, a page saying what to do next."""

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        portal = Portal(request)
        portal.session.flash("请先登录", "info")
        return RedirectResponse(portal.login_url(), status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, _exc: CsrfFailed) -> HTMLResponse:
        return Portal(request).render(
            "error.html", 403, title="页面已过期", hint="表单已过期或来源不明，请返回上一页刷新后重新提交。"
        )

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, exc: NotAllowed) -> HTMLResponse:
        return Portal(request).render("error.html", 403, title=exc.title, hint=exc.hint, link=exc.link)

    @app.exception_handler(FormInvalid)
    async def form_invalid(request: Request, exc: FormInvalid) -> HTMLResponse:
        # A route that re-renders its own form catches FormInvalid itself; this is the fallback.
        detail = "；".join(exc.errors.values())
        return Portal(request).render("error.html", 422, title="输入有误", hint=detail)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTMLResponse:
        hint, link = labels.HINTS.get(exc.code, (None, None))
        return Portal(request).render(
            "error.html",
            exc.status if exc.status >= 400 else 500,
            title=exc.detail,
            hint=hint,
            link=link,
            code=exc.code,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        title = "页面不存在" if exc.status_code == 404 else "请求未能完成"
        return Portal(request).render("error.html", exc.status_code, title=title, hint=None)
