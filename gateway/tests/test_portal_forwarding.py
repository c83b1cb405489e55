"""The gateway in front of the portal (common.registry.PORTAL, GATEWAY_WEB_URL): every path
outside /api/v1 and the gateway's own operations paths is the portal's, passed on as it came
with the caller's address and the request id; the API still goes to the services; an event
stream from the portal is relayed as it comes; a portal that is down or too slow answers a
502 page (HTML: a person is looking at it), never a 500; and a portal form may carry up to
GATEWAY_WEB_MAX_BODY_BYTES while the API keeps its own 1 MB limit.

The portal here is a small FastAPI app, reached in-process (the all-in-one launcher's
HttpxForwarder over ASGIStreamTransport) or over HTTP (``web_url``, as deployed)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from common.testing.tokens import TestIssuer
from gateway.config import Settings
from gateway.main import create_app
from gateway.proxy import OWN_PATHS, HttpxForwarder, Upstreams, in_process_client
from gateway.routes import route

from .conftest import gateway_settings, served

CALLER = ("192.0.2.10", 4000)  # the address the test client connects from
MARK = "PORTAL-PAGE"  # in every answer of the portal, and in none of the gateway's
SERVICE = route("/products") or "catalog"  # a public API path's service
SAFETY = 10.0
PROMPTLY = 3.0
MiB = 1024 * 1024


class Portal:
    """A stand-in for the portal: it notes what reaches it and answers pages, a form post, a
    redirect with a cookie, and an event stream whose second event waits for ``go_on``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.go_on = asyncio.Event()
        self.gone = asyncio.Event()
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        self.app = app

        @app.post("/forms/{name}")
        async def form(request: Request, name: str) -> JSONResponse:
            body = await request.body()
            self.note(request, body)
            return JSONResponse({"mark": MARK, "form": name, "size": len(body)})

        @app.post("/login")
        async def login(request: Request) -> RedirectResponse:
            self.note(request, await request.body())
            response = RedirectResponse("/me?welcome=1", status_code=303)
            response.set_cookie("voucher_session", "sealed", httponly=True, samesite="lax")
            return response

        @app.get("/events")
        async def events(request: Request) -> StreamingResponse:
            self.note(request, b"")

            async def stream() -> AsyncIterator[bytes]:
                try:
                    yield b"id: 1\ndata: first\n\n"
                    await asyncio.wait_for(self.go_on.wait(), SAFETY)
                    yield b"id: 2\ndata: second\n\n"
                except asyncio.CancelledError:
                    self.gone.set()
                    raise

            return StreamingResponse(stream(), media_type="text/event-stream")

        @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
        async def page(request: Request, path: str) -> Response:
            self.note(request, await request.body())
            return HTMLResponse(f"<!doctype html><title>{MARK}</title><p>/{path}</p>")

    def note(self, request: Request, body: bytes) -> None:
        self.seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body_size": len(body),
            }
        )

    def forwarder(self) -> HttpxForwarder:
        """How the all-in-one launcher reaches the portal in-process."""
        return HttpxForwarder(in_process_client(self.app, "web"))


async def service(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The service behind /api/v1: answers every request with where it went."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = f'{{"service": "{SERVICE}", "path": "{scope["path"]}"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


Make = Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient]]]


@pytest_asyncio.fixture
async def make_gateway(fresh_db: Callable[[str], Awaitable[str]]) -> AsyncIterator[Make]:
    """A gateway (with a stand-in service behind /api/v1) in front of ``portal`` (None: the
    portal of the settings' ``web_url``, if any); returns (app, a client through it)."""
    async with AsyncExitStack() as stack:

        async def make(portal: Portal | None, **overrides: Any) -> tuple[FastAPI, httpx.AsyncClient]:
            settings = gateway_settings(await fresh_db("gateway"), **overrides)
            app = create_app(
                settings,
                upstreams=Upstreams.in_process({SERVICE: service}),
                key_set=TestIssuer().keys,
                portal=portal.forwarder() if portal is not None else None,
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=CALLER), base_url="http://gateway"
            )
            stack.push_async_callback(client.aclose)
            return app, client

        yield make


# --- what goes where ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/login?next=%2Fme%2Forders",
        "/static/portal.css",
        "/enterprise/orders/01HX/contract",
        "/api",  # not /api/v1/...: a page
        "/apiary",
        "/healthz/",  # not the gateway's /healthz
        "/%E4%B8%AD%E6%96%87",  # a path in Chinese, percent-encoded as browsers send it
    ],
)
async def test_a_page_reaches_the_portal_as_it_came_with_the_callers_address_and_request_id(
    make_gateway: Make, target: str
) -> None:
    portal = Portal()
    _, client = await make_gateway(portal)
    r = await client.get(target, headers={"Cookie": "voucher_session=abc", "Accept-Language": "zh-CN"})
    assert r.status_code == 200 and MARK in r.text, r.text
    assert r.headers["content-type"].startswith("text/html")
    (seen,) = portal.seen
    path, _, query = target.partition("?")
    assert seen["path"] == httpx.URL(f"http://x{path}").path
    assert seen["query"] == query
    headers = seen["headers"]
    assert headers["x-forwarded-for"] == CALLER[0]
    assert headers["x-request-id"] == r.headers["x-request-id"]
    assert headers["cookie"] == "voucher_session=abc" and headers["accept-language"] == "zh-CN"


async def test_one_browsers_session_cookie_never_reaches_another_browsers_request(make_gateway: Make) -> None:
    """In-process, the portal is reached through one shared httpx client: a cookie the portal
    set for one browser must not be kept by that client and sent with the next request that
    came without one (a stranger would be signed in as the first user)."""
    portal = Portal()
    _, first = await make_gateway(portal)
    signed_in = await first.post("/login", content=b"phone=1", follow_redirects=False)
    assert signed_in.status_code == 303 and "voucher_session=sealed" in signed_in.headers["set-cookie"]
    first.cookies.clear()  # another browser: no cookie at all
    await first.get("/me")
    assert "cookie" not in portal.seen[-1]["headers"], portal.seen[-1]["headers"]


async def test_a_request_id_the_caller_sent_is_the_one_the_portal_sees(make_gateway: Make) -> None:
    portal = Portal()
    _, client = await make_gateway(portal)
    r = await client.get("/", headers={"X-Request-ID": "req-0123456789"})
    assert r.headers["x-request-id"] == "req-0123456789"
    assert portal.seen[0]["headers"]["x-request-id"] == "req-0123456789"


@pytest.mark.parametrize(("hops", "expected"), [(0, CALLER[0]), (1, "203.0.113.9")])
async def test_the_portal_sees_the_address_the_gateway_trusts_never_a_forged_one(
    make_gateway: Make, hops: int, expected: str
) -> None:
    """Without a trusted proxy in front, the caller's own X-Forwarded-For is dropped; behind
    one, the address that proxy saw. Either way the portal gets one address (it trusts one hop:
    the gateway)."""
    portal = Portal()
    _, client = await make_gateway(portal, trusted_proxy_hops=hops)
    r = await client.get("/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200
    assert portal.seen[0]["headers"]["x-forwarded-for"] == expected


async def test_a_form_post_and_its_redirect_and_cookie_pass_through_untouched(make_gateway: Make) -> None:
    portal = Portal()
    _, client = await make_gateway(portal)
    r = await client.post("/login", data={"phone": "13800000000", "password": "secret", "csrf": "t"})
    # The gateway does not follow the redirect: the browser does.
    assert r.status_code == 303 and r.headers["location"] == "/me?welcome=1"
    assert "voucher_session=sealed" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    (seen,) = portal.seen
    assert seen["method"] == "POST" and seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert seen["body_size"] == len(b"phone=13800000000&password=secret&csrf=t")


async def test_the_gateways_own_paths_stay_the_gateways(make_gateway: Make) -> None:
    portal = Portal()
    _, client = await make_gateway(portal)
    assert OWN_PATHS >= {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "started": True}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    openapi = await client.get("/openapi.json")
    assert openapi.status_code == 200 and "/api/v1/portal/stats" in openapi.json()["paths"]
    for r in (health, ready, metrics, docs, openapi):
        assert MARK not in r.text
    assert portal.seen == []


async def test_the_api_still_goes_to_the_services(make_gateway: Make) -> None:
    portal = Portal()
    _, client = await make_gateway(portal)
    r = await client.get("/api/v1/products")
    assert r.status_code == 200 and r.json() == {"service": SERVICE, "path": "/api/v1/products"}
    # The gateway's own API routes, and its 404 for an API path nobody serves (problem+json,
    # not a page of the portal).
    assert (await client.get("/api/v1/portal/stats")).status_code == 200
    unknown = await client.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert portal.seen == []


async def test_without_a_portal_every_other_path_is_the_gateways_404(make_gateway: Make) -> None:
    _, client = await make_gateway(None)
    assert Settings.model_fields["web_url"].default is None
    r = await client.get("/")
    assert r.status_code == 404 and MARK not in r.text
    assert (await client.get("/api/v1/products")).status_code == 200


# --- a portal that is down ---------------------------------------------------------------------


def _closed_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_portal_that_is_down_answers_a_502_page(make_gateway: Make, method: str) -> None:
    """As deployed: GATEWAY_WEB_URL names a portal that is not up (yet); the gateway is up all
    the same (it does not wait for the portal) and says so in a page."""
    _, client = await make_gateway(None, web_url=f"http://127.0.0.1:{_closed_port()}")
    r = await client.request(method, "/enterprise/orders", data={"a": "b"} if method == "POST" else None)
    assert r.status_code == 502
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["retry-after"] == "5"
    assert "暂时无法访问" in r.text and "<html" in r.text
    assert r.headers["x-request-id"]
    # The gateway itself is healthy: its readiness does not depend on the portal.
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/api/v1/products")).status_code == 200


async def test_a_portal_too_slow_to_answer_is_a_502_page_too(make_gateway: Make) -> None:
    slow = FastAPI()

    @slow.get("/")
    async def home() -> HTMLResponse:
        await asyncio.sleep(SAFETY)
        return HTMLResponse(MARK)

    async with served(slow) as (url, _):
        _, client = await make_gateway(None, web_url=url, upstream_timeout=0.3)
        async with asyncio.timeout(PROMPTLY):
            r = await client.get("/")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert MARK not in r.text


# --- an event stream from the portal -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["in_process", "distributed"])
async def test_an_event_stream_from_the_portal_is_relayed_as_it_comes(
    fresh_db: Callable[[str], Awaitable[str]], mode: str
) -> None:
    portal = Portal()
    async with AsyncExitStack() as stack:
        database = await fresh_db("gateway")
        if mode == "distributed":
            url, _ = await stack.enter_async_context(served(portal.app))
            app = create_app(
                gateway_settings(database, web_url=url),
                upstreams=Upstreams.in_process({SERVICE: service}),
                key_set=TestIssuer().keys,
            )
        else:
            app = create_app(
                gateway_settings(database),
                upstreams=Upstreams.in_process({SERVICE: service}),
                key_set=TestIssuer().keys,
                portal=portal.forwarder(),
            )
        await stack.enter_async_context(app.router.lifespan_context(app))
        gateway_url, _ = await stack.enter_async_context(served(app))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=gateway_url, timeout=SAFETY))
        async with asyncio.timeout(PROMPTLY):
            async with client.stream("GET", "/events", headers={"Accept": "text/event-stream"}) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                assert "content-length" not in r.headers
                assert r.headers["x-accel-buffering"] == "no"
                chunks = r.aiter_text()
                received = ""
                while "\n\n" not in received:
                    received += await anext(chunks)
                # The first event is here while the portal still holds the second back.
                assert received == "id: 1\ndata: first\n\n"
                portal.go_on.set()
                async for chunk in chunks:
                    received += chunk
        assert received == "id: 1\ndata: first\n\nid: 2\ndata: second\n\n"
    assert portal.seen[0]["headers"]["x-forwarded-for"] == "127.0.0.1"


# --- how much a request may carry --------------------------------------------------------------


def test_the_default_limits_are_the_portals_25_mb_and_the_apis_1_mb() -> None:
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert defaults["web_max_body_bytes"] == 25 * MiB
    assert defaults["max_body_bytes"] == MiB


async def test_a_portal_form_may_carry_up_to_its_limit_while_the_api_keeps_1_mb(make_gateway: Make) -> None:
    portal = Portal()
    limit = 3 * MiB
    _, client = await make_gateway(portal, web_max_body_bytes=limit)
    api_limit = Settings.model_fields["max_body_bytes"].default

    # Over the API's limit but within the portal's: the form reaches the portal whole.
    r = await client.post("/forms/receipt", content=b"x" * (api_limit + 1))
    assert r.status_code == 200 and r.json()["size"] == api_limit + 1
    r = await client.post("/forms/receipt", content=b"x" * limit)
    assert r.status_code == 200 and r.json()["size"] == limit
    # Over the portal's limit: refused before the portal reads any of it.
    r = await client.post("/forms/receipt", content=b"x" * (limit + 1))
    assert r.status_code == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(4):
            yield b"x" * MiB

    r = await client.post("/forms/receipt", content=chunked())
    assert r.status_code == 413
    assert [s["body_size"] for s in portal.seen] == [api_limit + 1, limit]

    # The API's limit is what it was.
    r = await client.post("/api/v1/products", content=b"x" * (api_limit + 1))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_flood_of_page_requests_from_one_address_is_slowed_with_a_page_saying_so(
    make_gateway: Make,
) -> None:
    """Pages are counted per caller address like the API (a flood of pages would otherwise
    reach the portal, and through it the services, unchecked); the portal's own assets are not."""
    portal = Portal()
    _, client = await make_gateway(portal, rate_limit_per_ip=3)
    answers = [(await client.get("/products")).status_code for _ in range(5)]
    assert answers[:3] == [200, 200, 200] and answers[-1] == 429, answers
    slowed = await client.get("/products")
    assert slowed.headers["content-type"].startswith("text/html") and "Retry-After" in slowed.headers
    assert "请求过于频繁" in slowed.text
    assert (await client.get("/static/portal.css")).status_code == 200
