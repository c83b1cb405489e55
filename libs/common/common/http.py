"""Pure ASGI middleware every service and the gateway use: request ids, access logs and
metrics, and a request-body size limit (413)."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import quote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.context import correlation_id_var, request_id_var
from common.errors import Problem, no_such_path, problem_response
from common.metrics import HTTP_LATENCY, HTTP_REQUESTS, record_readiness

log = structlog.get_logger("access")
# The standard-library logger behind ``log``. structlog runs its whole processor chain
# (timestamps, redaction, rendering) before the standard library drops a line below the
# level, so the access line is only made when INFO is on (LOG_LEVEL=WARNING skips it).
_access_logger = logging.getLogger("access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return value.decode("latin-1")
            except UnicodeDecodeError:
                return None
    return None


def incoming_id(scope: Scope, name: bytes) -> str | None:
    value = _header(scope, name)
    return value if value and _SAFE_ID.match(value) else None


# Sent on every response unless the app set its own value (a download sets its own
# Content-Disposition and Cache-Control, /docs needs scripts so it gets no CSP).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# API answers carry tokens and personal data: no browser or proxy keeps a copy, unless the
# route says otherwise (a public catalogue page may set its own Cache-Control).
NO_STORE = (b"cache-control", b"no-store")
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


class RequestContextMiddleware:
    """Takes (or makes) ``X-Request-ID``, binds it and the correlation id to every log line,
    echoes it on the response with the security headers, logs one access line and records
    metrics.

    ``guarded`` maps an operations path (``/metrics``, ``/docs``...) to the bearer token that
    opens it, or None when it is closed: production passes what is not configured as public
    (``ServiceSettings.guarded_paths``); a guarded path answers 404 to everyone else.
    """

    def __init__(self, app: ASGIApp, service: str, guarded: dict[str, str | None] | None = None) -> None:
        self.app = app
        self.service = service
        self.guarded = guarded or {}
        # prometheus_client's labels() takes a lock and builds a key on every call: the
        # children are kept here per (method, route, status), a handful per service.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _metrics(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        key = (method, template, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                HTTP_REQUESTS.labels(self.service, method, template, str(status)),
                HTTP_LATENCY.labels(self.service, method, template),
            )
        return found

    def _refused(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path not in self.guarded:
            return False
        token = self.guarded[path]
        if token is None:
            return True
        presented = _header(scope, b"authorization") or ""
        return not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope, b"x-request-id") or str(uuid.uuid4())
        correlation_id = incoming_id(scope, b"x-correlation-id") or request_id
        rid_token = request_id_var.set(request_id)
        cid_token = correlation_id_var.set(correlation_id)
        status = 500
        started = time.perf_counter()
        path = scope.get("path", "")
        is_api = path.startswith("/api/")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if b"cache-control" not in present:
                    headers.append(NO_STORE)
                if is_api and b"content-security-policy" not in present:
                    headers.append(API_CSP)
                message["headers"] = headers
            await send(message)

        try:
            if self.guarded and self._refused(scope):
                await problem_response(no_such_path(), path)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            requests, latency = self._metrics(method, template, status)
            requests.inc()
            latency.observe(elapsed)
            if path == "/readyz" and status in (200, 503):  # the probes' view, for flap alerts
                record_readiness(self.service, status == 200)
            if path not in _QUIET_PATHS and _access_logger.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    service=self.service,
                    method=method,
                    path=path,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            correlation_id_var.reset(cid_token)
            request_id_var.reset(rid_token)


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"请求体超过大小限制（{limit // 1024} KB）")


class BodySizeLimitMiddleware:
    """Refuses a body over ``limit`` bytes with 413 before the app reads any of it: by its
    Content-Length when it has one, else (chunked) by reading it ahead up to the limit.
    Per-path limits may be larger (uploads): ``overrides`` by path prefix (the first that
    matches), or ``limit_for(path)`` deciding each path itself (the gateway's, from the
    registry)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        overrides: dict[str, int] | None = None,
        limit_for: Callable[[str], int] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = overrides or {}
        self.limit_for = limit_for

    def _limit_for(self, path: str) -> int:
        if self.limit_for is not None:
            return self.limit_for(path)
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = 0
            if declared > limit:
                await problem_response(BodyTooLarge(limit), scope.get("path"))(scope, receive, send)
                return
            # The server enforces Content-Length itself; nothing more to count.
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # No length given: read ahead (at most limit + one chunk), then replay to the app.
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await problem_response(BodyTooLarge(limit), scope.get("path"))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def client_ip(scope: Mapping[str, Any], trusted_proxy_hops: int = 0) -> str:
    """The caller's address; ``X-Forwarded-For`` only counts behind trusted proxies."""
    if trusted_proxy_hops > 0:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if len(hops) >= trusted_proxy_hops:
                return hops[-trusted_proxy_hops]
    client = scope.get("client")
    return client[0] if client else "unknown"


def content_disposition(name: str, disposition: str = "inline") -> str:
    """RFC 6266 with an ASCII fallback and the real name as RFC 5987 ``filename*``."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def no_cookie_jar() -> CookieJar:
    """A cookie jar that keeps nothing, for an httpx client shared by many callers (a proxy, a
    portal's API client): a cookie one caller got must never go out with another's request."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
