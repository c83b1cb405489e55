"""The forwarding path: rate limits, the JWT check, then the request to the owning service.

A pure ASGI component (no routing framework on the hot path). Requests below /api/v1 that
the prefix table gives to a service are forwarded with a pooled httpx client (in all-in-one
mode the client talks to the mounted service app in-process); everything else falls through
to the gateway's own FastAPI app (portal statistics, composed audit log, docs, health).
"""

from __future__ import annotations

import httpx
import structlog
from common.auth import TokenVerifier
from common.context import correlation_id_var, request_id_var
from common.errors import Problem, problem_response
from common.http import client_ip
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import routes
from gateway.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"x-forwarded-for",
        b"x-request-id",
        b"x-correlation-id",
    }
)
RESPONSE_DROP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
)


class Upstreams:
    """One pooled client per service."""

    def __init__(self, clients: dict[str, httpx.AsyncClient]) -> None:
        self.clients = clients

    @classmethod
    def over_http(
        cls, urls: dict[str, str], *, timeout: float, connect_timeout: float, max_connections: int
    ) -> Upstreams:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        t = httpx.Timeout(timeout, connect=connect_timeout)
        return cls(
            {name: httpx.AsyncClient(base_url=url, timeout=t, limits=limits) for name, url in urls.items()}
        )

    @classmethod
    def in_process(cls, apps: dict[str, ASGIApp]) -> Upstreams:
        return cls(
            {
                name: httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 0)), base_url=f"http://{name}"
                )
                for name, app in apps.items()
            }
        )

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


class GatewayProxy:
    def __init__(
        self,
        app: ASGIApp,
        *,
        upstreams: Upstreams,
        verifier: TokenVerifier,
        limiter: RateLimiter,
        per_ip: int,
        per_user: int,
        trusted_proxy_hops: int = 0,
        development: bool = False,
    ) -> None:
        self.app = app
        self.upstreams = upstreams
        self.verifier = verifier
        self.limiter = limiter
        self.per_ip = per_ip
        self.per_user = per_user
        self.trusted_proxy_hops = trusted_proxy_hops
        self.development = development

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(routes.API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        sub = path[len(routes.API_PREFIX) :]
        service = routes.route(sub)
        if service is None:
            await self.app(scope, receive, send)  # the gateway's own routes, or 404
            return
        try:
            await self._forward(scope, receive, send, service, sub)
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, service: str, sub: str) -> None:
        method: str = scope["method"]
        ip = client_ip(scope, self.trusted_proxy_hops)
        if sub.startswith("/dev") and not self.development:
            raise Problem(404, "not_found", "请求的资源不存在")
        if (wait := await self.limiter.hit(f"ip:{ip}", self.per_ip)) is not None:
            raise _rate_limited(wait)
        token = _bearer(scope)
        if token is not None or not routes.is_public(method, sub):
            if token is None:
                raise Problem(401, "unauthenticated", "请先登录", headers={"WWW-Authenticate": "Bearer"})
            principal = await self.verifier.principal(token)
            if (wait := await self.limiter.hit(f"user:{principal.user_id}", self.per_user)) is not None:
                raise _rate_limited(wait)
        client = self.upstreams.clients.get(service)
        if client is None:
            raise Problem(503, "service_unavailable", "该服务暂未开放，请稍后再试")
        body = await _read_body(receive)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in HOP_BY_HOP
        ]
        forwarded = _header(scope, b"x-forwarded-for")
        headers.append(
            ("x-forwarded-for", f"{forwarded}, {ip}" if forwarded and self.trusted_proxy_hops else ip)
        )
        if rid := request_id_var.get():
            headers.append(("x-request-id", rid))
        if cid := correlation_id_var.get():
            headers.append(("x-correlation-id", cid))
        query = scope.get("query_string", b"")
        url = scope["path"] + ("?" + query.decode("latin-1") if query else "")
        try:
            response = await client.request(method, url, headers=headers, content=body)
        except httpx.TimeoutException as exc:
            log.warning("upstream_timeout", service=service, path=scope["path"])
            raise Problem(504, "upstream_timeout", "服务响应超时，请稍后重试") from exc
        except httpx.TransportError as exc:
            log.warning("upstream_unavailable", service=service, path=scope["path"], error=type(exc).__name__)
            raise Problem(502, "upstream_unavailable", "服务暂不可用，请稍后重试") from exc
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in RESPONSE_DROP
        ]
        content = response.content
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})


def _rate_limited(wait: int) -> Problem:
    return Problem(
        429, "rate_limited", "请求过于频繁，请稍后再试", headers={"Retry-After": str(wait)}, retry_after=wait
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


def _bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401, "token_invalid", "登录凭证无效，请重新登录", headers={"WWW-Authenticate": "Bearer"}
        )
    return token.strip()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
