"""The forwarding path: rate limits, the JWT check, then the request to the owning service.

A pure ASGI component (no routing framework on the hot path). Requests below /api/v1 that
the prefix table gives to a service are forwarded over pooled keep-alive connections:
aiohttp for services reached over plain HTTP (:class:`AiohttpForwarder`, the distributed
mode), an httpx client otherwise (in all-in-one mode it talks to the mounted service app
in-process; https upstreams). Everything else falls through to the gateway's own FastAPI app
(portal statistics, composed audit log, docs, health).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import aiohttp
import httpx
import structlog
import yarl
from multidict import CIMultiDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.auth import TokenVerifier
from common.context import correlation_id_var, request_id_var
from common.errors import Problem, problem_response
from common.http import client_ip
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
_RESPONSE_DROP_RAW = frozenset(name.encode() for name in RESPONSE_DROP)

Headers = list[tuple[bytes, bytes]]


class UpstreamTimeout(Exception):
    """No connection, no free pool slot or no answer in time (httpx: TimeoutException)."""


class UpstreamUnavailable(Exception):
    """The service could not be reached or broke the exchange (httpx: TransportError); the
    argument names the failure like httpx's exception classes do (ConnectError, ReadError...)."""

    @property
    def error(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class Forwarder(Protocol):
    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        """Send the request (``url`` = path and query below the service's base URL) and return
        the status, the response headers without hop-by-hop ones and the (decoded) body."""
        ...

    async def aclose(self) -> None: ...


class HttpxForwarder:
    """Forwarding through an httpx client: in-process (ASGI) services and https upstreams."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        try:
            response = await self.client.request(
                method,
                url,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                content=body,
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in RESPONSE_DROP
        ]
        return response.status_code, out, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpForwarder:
    """Forwarding to a plain-HTTP service over aiohttp's pool of keep-alive connections.

    httpx stays for every other call (in-process services, https, the gateway's composed
    reads), but on the hot path its client and httpcore's pool cost several milliseconds of
    CPU per request on our machines (the pool re-checks every idle connection on each
    request, encode/httpx#3215), more than identity spends answering. aiohttp's connector and
    C parser forward the same request for a small fraction of that; bench/README.md has the
    figures. The mapping of failures is httpx's: no connection or a broken exchange is
    UpstreamUnavailable (502), running out of time is UpstreamTimeout (504).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=timeout)
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections, keepalive_timeout=self.keepalive_expiry, ttl_dns_cache=60
                ),
                timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
            )
        return self._session

    async def forward(
        self, method: str, url: str, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        outgoing = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        try:
            async with self._client().request(
                method,
                yarl.URL(self.base + url, encoded=True),
                headers=outgoing,
                data=body or None,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                raw_headers = response.raw_headers
                status = response.status
        except TimeoutError as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        return status, [(k, v) for k, v in raw_headers if k.lower() not in _RESPONSE_DROP_RAW], content

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Upstreams:
    """Per service: a pooled httpx client (the gateway's own calls: statistics, OpenAPI, audit
    log) and the forwarder of the proxied requests."""

    def __init__(
        self, clients: dict[str, httpx.AsyncClient], forwarders: dict[str, Forwarder] | None = None
    ) -> None:
        self.clients = clients
        self.forwarders: dict[str, Forwarder] = {
            name: HttpxForwarder(client) for name, client in clients.items()
        }
        self.forwarders.update(forwarders or {})

    @classmethod
    def over_http(
        cls, urls: dict[str, str], *, timeout: float, connect_timeout: float, max_connections: int
    ) -> Upstreams:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        t = httpx.Timeout(timeout, connect=connect_timeout)
        clients = {
            name: httpx.AsyncClient(base_url=url, timeout=t, limits=limits) for name, url in urls.items()
        }
        forwarders: dict[str, Forwarder] = {
            name: AiohttpForwarder(
                url,
                timeout=timeout,
                connect_timeout=connect_timeout,
                max_connections=max_connections,
                keepalive_expiry=limits.keepalive_expiry or 5.0,
            )
            for name, url in urls.items()
            if url.startswith("http://")
        }
        return cls(clients, forwarders)

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
        for name, forwarder in self.forwarders.items():
            if not isinstance(forwarder, HttpxForwarder) or name not in self.clients:
                await forwarder.aclose()
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
        if any(segment in (".", "..") for segment in sub.split("/")):
            # A client could otherwise climb out of /api/v1 (to /internal) after routing.
            await problem_response(Problem(404, "not_found", "请求的资源不存在"), path)(scope, receive, send)
            return
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
        forwarder = self.upstreams.forwarders.get(service)
        if forwarder is None:
            raise Problem(503, "service_unavailable", "该服务暂未开放，请稍后再试")
        body = await _read_body(receive)
        headers: Headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        forwarded = _header(scope, b"x-forwarded-for")
        xff = f"{forwarded}, {ip}" if forwarded and self.trusted_proxy_hops else ip
        headers.append((b"x-forwarded-for", xff.encode("latin-1")))
        if rid := request_id_var.get():
            headers.append((b"x-request-id", rid.encode("latin-1")))
        if cid := correlation_id_var.get():
            headers.append((b"x-correlation-id", cid.encode("latin-1")))
        url = _target(scope)
        try:
            status, out, content = await forwarder.forward(method, url, headers, body)
        except UpstreamTimeout as exc:
            log.warning("upstream_timeout", service=service, path=scope["path"])
            raise Problem(504, "upstream_timeout", "服务响应超时，请稍后重试") from exc
        except UpstreamUnavailable as exc:
            log.warning("upstream_unavailable", service=service, path=scope["path"], error=exc.error)
            raise Problem(502, "upstream_unavailable", "服务暂不可用，请稍后重试") from exc
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})


def _target(scope: Scope) -> str:
    """Path and query as the client sent them (percent-encoded), with any byte that is not
    printable ASCII encoded, so an odd path reaches the service as a clean 404, never a 500."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = quote(raw.decode("latin-1"), safe=_URL_SAFE)
    if query := scope.get("query_string", b""):
        target += "?" + quote(query.decode("latin-1"), safe=_URL_SAFE + "?")
    return target


_URL_SAFE = "!$&'()*+,;=:@/%-._~"


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
