"""The forwarding path: rate limits, the JWT check, then the request to the owning service.

A pure ASGI component (no routing framework on the hot path). Requests below /api/v1 that
the prefix table gives to a service are forwarded over pooled keep-alive connections:
aiohttp for services reached over plain HTTP (:class:`AiohttpForwarder`, the distributed
mode), an httpx client otherwise (in all-in-one mode it talks to the mounted service app
in-process; https upstreams). Everything else falls through to the gateway's own FastAPI app
(portal statistics, composed audit log, docs, health).

Bodies are never held whole when they are large (uploads of up to 50 MiB, file downloads):

- a request body up to ``READ_AHEAD`` is read whole and forwarded with its length (most API
  calls); a larger one goes on to the service as it arrives (:class:`RequestStream`), with the
  Content-Length the client gave, or chunked. The route's limit (the registry's, main.py) is
  checked on the Content-Length before anything is read, and a body without one is counted as
  it comes: past the limit the request to the service breaks off (its connection is closed, an
  in-process service is told the client left) so the service never sees it complete, and the
  client gets the 413 problem;
- an answer up to ``BUFFERED_ANSWER`` is read whole and sent with its length; a larger one is
  sent on as the service sends it, with the service's Content-Length when it gave one (and the
  answer is not compressed: the forwarders decode), else chunked. An event stream
  (``text/event-stream``, a user's live notifications) is relayed chunk by chunk until the
  service ends it, it stays silent past ``stream_idle_timeout`` or the client goes away. In
  every case the request to the service is closed with it (:func:`_relay`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

import aiohttp
import httpx
import structlog
import yarl
from multidict import CIMultiDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.auth import TokenVerifier, token_invalid, unauthenticated
from common.context import correlation_id_var, request_id_var
from common.errors import Problem, no_such_path, problem_response
from common.http import BodyTooLarge, client_ip, no_cookie_jar
from gateway import errors, routes
from gateway.inprocess import ASGIStreamTransport
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

MiB = 1024 * 1024
# A request body up to this size is read whole before it is forwarded; a larger one is
# forwarded as it arrives.
READ_AHEAD = MiB
# An answer up to this size is read whole and sent with its length; a larger one (or one of
# unknown length that goes on past it) is sent on as it comes.
BUFFERED_ANSWER = MiB

EVENT_STREAM = "text/event-stream"
# Set on an event stream unless the service did: no browser or proxy keeps a copy (the events
# are personal, as every API answer, see common.http.NO_STORE) or holds them back (nginx
# buffers a proxied answer unless told not to).
STREAM_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),
)


class UpstreamTimeout(Exception):
    """No connection, no free pool slot or no answer in time (httpx: TimeoutException)."""


class UpstreamUnavailable(Exception):
    """The service could not be reached or broke the exchange (httpx: TransportError); the
    argument names the failure like httpx's exception classes do (ConnectError, ReadError...)."""

    @property
    def error(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class UpstreamStream:
    """An answer's body chunk by chunk as the service sends it (decoded): an event stream
    (``events``), or a large answer (``length``: the bytes to come, when the service said).
    Iterate it once and always close it: :meth:`aclose` ends the exchange with the service (a
    connection it did not finish is closed, never pooled; an in-process service is told the
    client left). Reading fails as the forwarders do: UpstreamTimeout when the service stayed
    silent past the (stream idle) read limit, UpstreamUnavailable when the exchange broke."""

    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None],
        close: Callable[[], Awaitable[None]],
        *,
        events: bool = False,
        length: int | None = None,
    ) -> None:
        self._chunks = chunks
        self._close = close
        self.events = events
        self.length = length

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:
            await self._close()


Body = bytes | UpstreamStream


class RequestBodyBroken(Exception):
    """Raised by a :class:`RequestStream` inside the forwarder: the rest of the body will not
    come (over the route's limit, or the client went away). The forwarder's request breaks
    off with it: aiohttp closes the connection before the body's end, an in-process service
    reads http.disconnect (gateway.inprocess)."""


class RequestStream:
    """A request body larger than READ_AHEAD, forwarded as it arrives: what was read ahead,
    then each chunk as the client sends it, counted against the route's ``limit``. ``length``
    is the client's Content-Length (the server holds the body to it), None for a chunked body.
    Past the limit (``refused``) or when the client leaves (``gone``) it raises
    :class:`RequestBodyBroken`; ``complete`` once the client's body has ended."""

    def __init__(
        self, first: list[bytes], size: int, receive: Receive, limit: int, length: int | None
    ) -> None:
        self._first = first
        self._receive = receive
        self.size = size
        self.limit = limit
        self.length = length
        self.complete = False
        self.refused = False
        self.gone = False

    @property
    def broken(self) -> bool:
        return self.refused or self.gone

    def problem(self) -> Problem:
        return BodyTooLarge(self.limit) if self.refused else errors.request_incomplete()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        while self._first:
            yield self._first.pop(0)  # not kept once sent
        while not self.complete:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                raise RequestBodyBroken("the client went away")
            chunk: bytes = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.limit:
                self.refused = True
                raise RequestBodyBroken("the body is over the route's limit")
            self.complete = not message.get("more_body", False)
            if chunk:
                yield chunk


RequestBody = bytes | RequestStream


class Forwarder(Protocol):
    async def forward(
        self, method: str, url: str, headers: Headers, body: RequestBody
    ) -> tuple[int, Headers, Body]:
        """Send the request (``url`` = path and query below the service's base URL; the body
        whole, or a :class:`RequestStream` sent as it comes) and return the status, the
        response headers without hop-by-hop ones and the (decoded) body: whole bytes, or for
        an event stream or a large answer an :class:`UpstreamStream` the caller must close."""
        ...

    async def aclose(self) -> None: ...


class HttpxForwarder:
    """Forwarding through an httpx client: in-process (ASGI) services and https upstreams.

    A request that asks for an event stream waits at most ``stream_idle_timeout`` for each read
    instead of the client's read timeout (None: the client's; in-process there is none)."""

    def __init__(self, client: httpx.AsyncClient, *, stream_idle_timeout: float | None = None) -> None:
        self.client = client
        self.stream_idle_timeout = stream_idle_timeout

    async def forward(
        self, method: str, url: str, headers: Headers, body: RequestBody
    ) -> tuple[int, Headers, Body]:
        options: dict[str, Any] = {}
        if self.stream_idle_timeout is not None and asks_for_event_stream(method, headers):
            t = self.client.timeout
            options["timeout"] = httpx.Timeout(
                connect=t.connect, read=self.stream_idle_timeout, write=t.write, pool=t.pool
            )
        request = self.client.build_request(
            method,
            url,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            content=body,
            **options,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in RESPONSE_DROP
        ]
        if is_event_stream(response.headers.get("content-type")):
            stream = UpstreamStream(_httpx_chunks(response), response.aclose, events=True)
            return response.status_code, out, stream
        length = plain_length(
            response.headers.get("content-length"), response.headers.get("content-encoding")
        )
        if streams(method, response.status_code, length):
            return (
                response.status_code,
                out,
                await _whole_or_stream(_httpx_chunks(response), response.aclose, length),
            )
        try:
            content = await response.aread()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        finally:
            await response.aclose()
        return response.status_code, out, content

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

    A request that asks for an event stream (``Accept: text/event-stream``) goes over a pool of
    its own (at most ``max_streams`` connections: an open stream holds one for as long as the
    user looks, and ordinary requests must never wait behind them), and waits at most
    ``stream_idle_timeout`` between two reads instead of ``timeout``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        keepalive_expiry: float = 5.0,
        stream_idle_timeout: float = 60.0,
        max_streams: int = 1000,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=timeout)
        self.stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=stream_idle_timeout
        )
        self.max_connections = max_connections
        self.max_streams = max_streams
        self.keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None

    def _new_session(self, limit: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=limit, keepalive_timeout=self.keepalive_expiry, ttl_dns_cache=60
            ),
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
            skip_auto_headers=("User-Agent",),
            auto_decompress=True,
        )

    def _client(self, stream: bool = False) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop.
        if stream:
            if self._streams is None:
                self._streams = self._new_session(self.max_streams, self.stream_timeout)
            return self._streams
        if self._session is None:
            self._session = self._new_session(self.max_connections, self.timeout)
        return self._session

    async def forward(
        self, method: str, url: str, headers: Headers, body: RequestBody
    ) -> tuple[int, Headers, Body]:
        outgoing = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        try:
            response = await self._client(asks_for_event_stream(method, headers)).request(
                method,
                yarl.URL(self.base + url, encoded=True),
                headers=outgoing,
                data=body or None,
                allow_redirects=False,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        out = [(k, v) for k, v in response.raw_headers if k.lower() not in _RESPONSE_DROP_RAW]
        if is_event_stream(response.headers.get("content-type")):
            stream = UpstreamStream(_aiohttp_chunks(response), _closer(response), events=True)
            return response.status, out, stream
        length = plain_length(
            response.headers.get("content-length"), response.headers.get("content-encoding")
        )
        if streams(method, response.status, length):
            return (
                response.status,
                out,
                await _whole_or_stream(_aiohttp_chunks(response), _closer(response), length),
            )
        try:
            async with response:  # released to the pool once read
                content = await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from exc
        return response.status, out, content

    async def aclose(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None


def asks_for_event_stream(method: str, headers: Headers) -> bool:
    """A GET whose Accept names text/event-stream (an EventSource always sends it)."""
    return method == "GET" and any(
        k.lower() == b"accept" and EVENT_STREAM.encode() in v.lower() for k, v in headers
    )


def is_event_stream(content_type: str | None) -> bool:
    return content_type is not None and content_type.partition(";")[0].strip().lower() == EVENT_STREAM


def streams(method: str, status: int, length: int | None) -> bool:
    """Whether an answer may be too large to read whole: one with a body (not a HEAD, 204 or
    304: their Content-Length, if any, is not of a body that comes) over BUFFERED_ANSWER or
    of unknown length."""
    if method == "HEAD" or status in (204, 304):
        return False
    return length is None or length > BUFFERED_ANSWER


def plain_length(content_length: str | None, content_encoding: str | None) -> int | None:
    """The length of an answer as the forwarders pass it on: its Content-Length, unless the
    answer is encoded (the forwarders decode it) or the length is not a number."""
    if content_length is None or (content_encoding or "identity").strip().lower() != "identity":
        return None
    try:
        length = int(content_length)
    except ValueError:
        return None
    return length if length >= 0 else None


async def _whole_or_stream(
    chunks: AsyncGenerator[bytes, None], close: Callable[[], Awaitable[None]], length: int | None
) -> Body:
    """A large answer (``length``) as a stream; one of unknown length read up to
    BUFFERED_ANSWER: whole when it ended by then (the exchange closed), else a stream of what
    was read and the rest."""
    stream = UpstreamStream(chunks, close, length=length)
    if length is not None:
        return stream
    read: list[bytes] = []
    size = 0
    try:
        while size <= BUFFERED_ANSWER:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                await stream.aclose()
                return b"".join(read)
            read.append(chunk)
            size += len(chunk)
    except BaseException:
        await stream.aclose()
        raise
    return UpstreamStream(_chain(read, chunks), close)


async def _chain(first: list[bytes], rest: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    try:
        while first:
            yield first.pop(0)
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


async def _httpx_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(type(exc).__name__) from exc
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(type(exc).__name__) from exc


async def _aiohttp_chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TimeoutError as exc:
        raise UpstreamTimeout(type(exc).__name__) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(type(exc).__name__) from exc


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        if response.content.at_eof():
            async with response:  # the service ended the stream: the connection may serve again
                pass
        else:
            response.close()  # never pool a connection in the middle of an answer

    return close


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
        cls,
        urls: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        stream_idle_timeout: float = 60.0,
        max_streams: int = 1000,
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
                stream_idle_timeout=stream_idle_timeout,
                max_streams=max_streams,
            )
            if url.startswith("http://")
            else HttpxForwarder(clients[name], stream_idle_timeout=stream_idle_timeout)
            for name, url in urls.items()
        }
        return cls(clients, forwarders)

    @classmethod
    def in_process(cls, apps: dict[str, ASGIApp]) -> Upstreams:
        # Not httpx.ASGITransport: it answers only once the app has returned, and an event
        # stream returns when the user leaves (gateway.inprocess).
        return cls({name: in_process_client(app, name) for name, app in apps.items()})

    async def aclose(self) -> None:
        for name, forwarder in self.forwarders.items():
            if not isinstance(forwarder, HttpxForwarder) or forwarder.client is not self.clients.get(name):
                await forwarder.aclose()
        for client in self.clients.values():
            await client.aclose()


def in_process_client(app: ASGIApp, name: str) -> httpx.AsyncClient:
    """An httpx client of an app in this process (all-in-one: each service, the portal). It
    is shared by every browser the gateway serves, so it keeps no cookie."""
    return httpx.AsyncClient(
        transport=ASGIStreamTransport(app, client=("127.0.0.1", 0)),
        base_url=f"http://{name}",
        cookies=no_cookie_jar(),
    )


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
        per_ip_tight: dict[str, int] | None = None,
        trusted_proxy_hops: int = 0,
        development: bool = False,
        portal: Forwarder | None = None,
        body_limit_for: Callable[[str], int] | None = None,
    ) -> None:
        self.app = app
        # The largest request body per path (main.body_limit_for): checked here for what is
        # forwarded, as it streams; the gateway's own routes have their own middleware.
        self.body_limit_for = body_limit_for or (lambda _path: MiB)
        self.portal = portal
        self.upstreams = upstreams
        self.verifier = verifier
        self.limiter = limiter
        self.per_ip = per_ip
        self.per_user = per_user
        self.per_ip_tight = per_ip_tight or {}  # routes.TIGHT's name -> requests per window
        self.trusted_proxy_hops = trusted_proxy_hops
        self.development = development

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and (length := _content_length(scope)) is not None
            and length > (limit := self.body_limit_for(path))
        ):
            # Refused before anything reads it, the rate limits and the token included.
            await problem_response(BodyTooLarge(limit), path)(scope, receive, send)
            return
        if scope["type"] != "http" or not path.startswith(routes.API_PREFIX + "/"):
            if self.portal is not None and scope["type"] == "http" and path not in OWN_PATHS:
                await self._to_portal(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        sub = path[len(routes.API_PREFIX) :]
        if any(segment in (".", "..") for segment in sub.split("/")):
            # A client could otherwise climb out of /api/v1 (to /internal) after routing.
            await problem_response(no_such_path(), path)(scope, receive, send)
            return
        service = routes.route(sub)
        try:
            if service is None:
                # The gateway's own routes (portal statistics, the composed audit log), or
                # 404: limited like forwarded ones; the route itself decides who may see it.
                await self._admit(scope, sub, own=True)
                await self.app(scope, receive, send)
                return
            await self._forward(scope, receive, send, service, sub)
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)

    async def _to_portal(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A page of the portal: passed on as it came, with the caller's address (the portal
        trusts one proxy hop) and the request id. The portal's own calls to the API come back
        through the gateway and are checked and rate limited there."""
        assert self.portal is not None
        ip = client_ip(scope, self.trusted_proxy_hops)
        # Pages count against the caller's address like API calls do (the portal's own assets,
        # cached by browsers, do not).
        if (
            not scope["path"].startswith("/static/")
            and (wait := await self.limiter.hit(f"ip:{ip}", self.per_ip)) is not None
        ):
            await send_portal_slowed(send, wait)
            return
        try:
            body = await self._take_body(scope, receive)
        except Problem as problem:
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        headers: Headers = [
            (k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k != b"x-forwarded-for"
        ]
        headers.append((b"x-forwarded-for", ip.encode("latin-1")))
        if rid := request_id_var.get():
            headers.append((b"x-request-id", rid.encode("latin-1")))
        _with_length(headers, body)
        try:
            status, out, content = await _exchange(self.portal, scope, headers, body, service="web")
        except Problem as problem:
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        except (UpstreamTimeout, UpstreamUnavailable) as exc:
            log.warning("portal_unavailable", path=scope["path"], error=type(exc).__name__)
            await send_portal_down(send)
            return
        if isinstance(content, UpstreamStream):
            await _relay(
                content, status, out, receive, send, service="web", path=scope["path"], watch=_taken(body)
            )
            return
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})

    async def _admit(self, scope: Scope, sub: str, *, own: bool = False) -> str:
        """The limits every API request passes, forwarded or the gateway's own: per address
        (and a tighter one of its own for the costly public routes, routes.TIGHT), then, with
        a token, per user (a token is checked here). A forwarded route that is not
        public needs a token; the gateway's own routes check theirs themselves. The caller's
        address is returned."""
        method: str = scope["method"]
        ip = client_ip(scope, self.trusted_proxy_hops)
        if (wait := await self.limiter.hit(f"ip:{ip}", self.per_ip)) is not None:
            raise errors.rate_limited(wait)
        if (tight := routes.tight_limit(method, sub)) is not None and tight in self.per_ip_tight:
            if (wait := await self.limiter.hit(f"{tight}:{ip}", self.per_ip_tight[tight])) is not None:
                raise errors.rate_limited(wait)
        public = own or routes.is_public(method, sub)
        token = _bearer(scope)
        if token is None and not public and asks_for_event_stream(method, scope["headers"]):
            token = _query_token(scope)  # a browser's EventSource cannot send the header
        if token is not None or not public:
            if token is None:
                raise unauthenticated()
            principal = await self.verifier.principal(token)
            if (wait := await self.limiter.hit(f"user:{principal.user_id}", self.per_user)) is not None:
                raise errors.rate_limited(wait)
        return ip

    async def _take_body(self, scope: Scope, receive: Receive) -> RequestBody:
        """The request body: whole up to READ_AHEAD, else a RequestStream of it. A body over the
        path's limit is the 413 problem; a client that left before its body ended, 400."""
        limit = self.body_limit_for(scope["path"])
        read: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise errors.request_incomplete()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            if chunk:
                read.append(chunk)
            if not message.get("more_body", False):
                return b"".join(read)
            if size > READ_AHEAD:
                return RequestStream(read, size, receive, limit, _content_length(scope))

    async def _forward(self, scope: Scope, receive: Receive, send: Send, service: str, sub: str) -> None:
        # Read (ahead) first, as the body limit always came before the rate limits and the token.
        body = await self._take_body(scope, receive)
        if sub.startswith("/dev") and not self.development:
            raise no_such_path()
        ip = await self._admit(scope, sub)
        forwarder = self.upstreams.forwarders.get(service)
        if forwarder is None:
            raise errors.service_unavailable("该服务暂未开放，请稍后再试")
        headers: Headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        forwarded = _header(scope, b"x-forwarded-for")
        xff = f"{forwarded}, {ip}" if forwarded and self.trusted_proxy_hops else ip
        headers.append((b"x-forwarded-for", xff.encode("latin-1")))
        if rid := request_id_var.get():
            headers.append((b"x-request-id", rid.encode("latin-1")))
        if cid := correlation_id_var.get():
            headers.append((b"x-correlation-id", cid.encode("latin-1")))
        _with_length(headers, body)
        try:
            status, out, content = await _exchange(forwarder, scope, headers, body, service=service)
        except UpstreamTimeout as exc:
            log.warning("upstream_timeout", service=service, path=scope["path"])
            raise errors.upstream_timeout() from exc
        except UpstreamUnavailable as exc:
            log.warning("upstream_unavailable", service=service, path=scope["path"], error=exc.error)
            raise errors.upstream_unavailable() from exc
        if isinstance(content, UpstreamStream):
            await _relay(
                content, status, out, receive, send, service=service, path=scope["path"], watch=_taken(body)
            )
            return
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})


async def _exchange(
    forwarder: Forwarder, scope: Scope, headers: Headers, body: RequestBody, *, service: str
) -> tuple[int, Headers, Body]:
    """The forwarder's answer, unless the streamed request body broke off (over the limit, or
    the client left): then the request to the service broke off with it (whatever the service
    made of that is dropped) and the client gets the body's problem."""
    try:
        status, out, content = await forwarder.forward(scope["method"], _target(scope), headers, body)
    except Exception as exc:
        if isinstance(body, RequestStream) and body.broken:
            log.info("request_body_cut", service=service, path=scope["path"], refused=body.refused)
            raise body.problem() from exc
        raise
    if isinstance(body, RequestStream) and body.broken:
        if isinstance(content, UpstreamStream):
            await content.aclose()
        log.info("request_body_cut", service=service, path=scope["path"], refused=body.refused)
        raise body.problem()
    return status, out, content


def _with_length(headers: Headers, body: RequestBody) -> None:
    """A streamed body goes on with the length the client gave (a whole one gets its own)."""
    if isinstance(body, RequestStream) and body.length is not None:
        headers.append((b"content-length", str(body.length).encode()))


def _taken(body: RequestBody) -> bool:
    """Whether the client's request has been read to its end (its receive() is free to tell
    when the client leaves)."""
    return not isinstance(body, RequestStream) or body.complete


async def _relay(
    stream: UpstreamStream,
    status: int,
    headers: Headers,
    receive: Receive,
    send: Send,
    *,
    service: str,
    path: str,
    watch: bool = True,
) -> None:
    """Send an answer on as it comes: an event stream (no length: chunked) until the service
    ends it or stays silent past the idle limit (the client's EventSource reconnects with
    Last-Event-ID), a large answer with the service's length (or chunked) until its end; or
    until the client goes away (its http.disconnect, ``watch``ed once the request's body has
    been read); then close the exchange with the service."""
    present = {k.lower() for k, _ in headers}
    if stream.events:
        headers = [*headers, *(h for h in STREAM_HEADERS if h[0] not in present)]
    elif stream.length is not None:
        headers = [*headers, (b"content-length", str(stream.length).encode())]
    pump = asyncio.ensure_future(_pump(stream, status, headers, send, service=service, path=path))
    tasks = [pump, asyncio.ensure_future(_disconnected(receive))] if watch else [pump]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pump.done():
            pump.result()  # a failure other than the service's is the gateway's: raise it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.aclose()


async def _pump(
    stream: UpstreamStream, status: int, headers: Headers, send: Send, *, service: str, path: str
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    try:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (UpstreamTimeout, UpstreamUnavailable) as exc:
        error = exc.error if isinstance(exc, UpstreamUnavailable) else type(exc).__name__
        if not stream.events:
            # The answer stays unfinished (the server closes the connection): the client must
            # not take what came for the whole file.
            log.warning("upstream_answer_broken", service=service, path=path, error=error)
            return
        if isinstance(exc, UpstreamTimeout):
            log.info("upstream_stream_idle", service=service, path=path)
        else:
            log.warning("upstream_stream_broken", service=service, path=path, error=error)
    await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# The gateway's own paths outside /api/v1; every other one is the portal's.
OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json"})

_PORTAL_DOWN = (
    "<!doctype html><html lang=zh-CN><meta charset=utf-8><title>暂时无法访问</title>"
    "<h1>平台门户暂时无法访问</h1><p>请稍后刷新重试。</p></html>"
).encode()


def _page(title: str, text: str) -> bytes:
    return (
        f"<!doctype html><html lang=zh-CN><meta charset=utf-8><title>{title}</title>"
        f"<h1>{title}</h1><p>{text}</p></html>"
    ).encode()


async def send_portal_slowed(send: Send, wait: int) -> None:
    page = _page("请求过于频繁", f"请求过于频繁，请 {wait} 秒后刷新重试。")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(page)).encode()),
                (b"retry-after", str(wait).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": page})


async def send_portal_down(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(_PORTAL_DOWN)).encode()),
                (b"retry-after", b"5"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _PORTAL_DOWN})


def _target(scope: Scope) -> str:
    """Path and query as the client sent them (percent-encoded), with any byte that is not
    printable ASCII encoded, so an odd path reaches the service as a clean 404, never a 500."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = quote(raw.decode("latin-1"), safe=_URL_SAFE)
    if query := scope.get("query_string", b""):
        target += "?" + quote(query.decode("latin-1"), safe=_URL_SAFE + "?")
    return target


_URL_SAFE = "!$&'()*+,;=:@/%-._~"


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
        raise token_invalid()
    return token.strip()


def _query_token(scope: Scope) -> str | None:
    """The ``access_token`` of the query, when there is exactly one (never logged: the access
    line and every warning name the path only)."""
    query = scope.get("query_string", b"").decode("latin-1")
    tokens = [v for k, v in parse_qsl(query, keep_blank_values=False) if k == "access_token"]
    if not tokens:
        return None
    if len(tokens) > 1:
        raise token_invalid()
    return tokens[0]


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length (the server holds the body to it), None without one."""
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
