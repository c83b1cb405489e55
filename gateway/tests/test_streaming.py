"""A user's live notifications (``GET /api/v1/me/notifications/stream``, Server-Sent Events)
through the gateway: each event reaches the client when the service sends it, in both modes
(over HTTP, and with the services in-process); the client resumes with Last-Event-ID and may
carry its token in the query (a browser's EventSource sets no header); a quiet stream is not
cut by the ordinary requests' read timeout; and when the client goes away, so does the
request to the service. Ordinary answers are read whole up to 1 MiB, larger ones stream with
their length (test_large_bodies.py)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from common.testing.tokens import TestIssuer
from gateway import proxy, routes
from gateway.main import create_app
from gateway.proxy import AiohttpForwarder, Forwarder, HttpxForwarder, Upstreams

from .conftest import gateway_settings, served

PATH = "/api/v1/me/notifications/stream"
SERVICE = routes.route(PATH.removeprefix(routes.API_PREFIX)) or "demands"
MODES = ["distributed", "in_process"]
EVENT_STREAM = {"Accept": "text/event-stream"}
# The stand-in service never waits longer than this for the test: on a gateway that buffers,
# the first event would come only after it.
SAFETY = 10.0
# How long a client waits for what streaming makes immediate.
PROMPTLY = 3.0


class Notifications:
    """The service's stream as demands serves it: an event, the next one when the test says so
    (``go_on``, or after ``pause`` seconds), then the end. It notes what reached it, when the
    client went away (``gone``: it received http.disconnect) and when it was done."""

    def __init__(self, pause: float | None = None) -> None:
        self.pause = pause
        self.seen: list[dict[str, Any]] = []
        self.go_on = asyncio.Event()
        self.gone = asyncio.Event()
        self.finished = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass  # the (empty) request body
        headers = dict(scope["headers"])
        self.seen.append({"method": scope["method"], "query": scope["query_string"], "headers": headers})
        try:
            if not scope["path"].endswith("/stream"):
                data = b'{"ok": true}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": data})
                return
            last = int(headers.get(b"last-event-id", b"0"))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": event(last + 1, "first"), "more_body": True})
            went_on = await self._next(receive)
            if self.gone.is_set():
                return
            if went_on:
                await send(
                    {"type": "http.response.body", "body": event(last + 2, "second"), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.finished.set()

    async def _next(self, receive: Any) -> bool:
        """Until the go-ahead (True), the client's leaving or SAFETY (False)."""
        go = asyncio.ensure_future(asyncio.sleep(self.pause) if self.pause is not None else self.go_on.wait())
        leaving = asyncio.ensure_future(receive())
        done, pending = await asyncio.wait({go, leaving}, timeout=SAFETY, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if leaving in done and leaving.result()["type"] == "http.disconnect":
            self.gone.set()
            return False
        return go in done


def event(number: int, data: str) -> bytes:
    return f"id: {number}\ndata: {data}\n\n".encode()


async def next_event(lines: AsyncIterator[str]) -> dict[str, str] | None:
    """The next event's fields as an EventSource reads them, or None at the stream's end."""
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if fields:
                return fields
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return None


@dataclass
class Gateway:
    client: httpx.AsyncClient
    issuer: TestIssuer
    server: uvicorn.Server


@pytest_asyncio.fixture
async def gateway(
    fresh_db: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """A gateway served over real HTTP (the test client must read the stream as it comes) in
    front of the service: over HTTP as deployed, or in-process as the all-in-one launcher
    mounts it."""
    async with AsyncExitStack() as stack:

        async def start(mode: str, service: Notifications, **overrides: Any) -> Gateway:
            issuer = TestIssuer()
            database = await fresh_db("gateway")
            if mode == "distributed":
                url, _ = await stack.enter_async_context(served(service))
                settings = gateway_settings(database, **{f"{SERVICE}_url": url}, **overrides)
                app = create_app(settings, key_set=issuer.keys)
            else:
                settings = gateway_settings(database, **overrides)
                ups = Upstreams.in_process({SERVICE: service})
                app = create_app(settings, upstreams=ups, key_set=issuer.keys)
            await stack.enter_async_context(app.router.lifespan_context(app))
            url, server = await stack.enter_async_context(served(app))
            client = httpx.AsyncClient(base_url=url, timeout=SAFETY)
            stack.push_async_callback(client.aclose)
            return Gateway(client, issuer, server)

        yield start


@pytest.mark.parametrize("mode", MODES)
async def test_each_event_reaches_the_client_when_the_service_sends_it(gateway, mode: str) -> None:  # type: ignore[no-untyped-def]
    service = Notifications()
    gw = await gateway(mode, service)
    user = gw.issuer.member()
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream("GET", PATH, headers={**user.headers, **EVENT_STREAM}) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            assert await next_event(lines) == {"id": "1", "data": "first"}
            assert not service.finished.is_set()  # the service is still on it
            service.go_on.set()
            assert await next_event(lines) == {"id": "2", "data": "second"}
            assert await next_event(lines) is None  # the service ended it, and so did the gateway
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "content-length" not in r.headers
    # No proxy or browser keeps or holds back the events.
    assert "no-cache" in r.headers["cache-control"] and "no-store" in r.headers["cache-control"]
    assert r.headers["x-accel-buffering"] == "no"
    assert r.headers["x-request-id"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_resumes_after_the_last_event_it_saw(gateway, mode: str) -> None:  # type: ignore[no-untyped-def]
    service = Notifications()
    service.go_on.set()
    gw = await gateway(mode, service)
    headers = {**gw.issuer.member().headers, **EVENT_STREAM, "Last-Event-ID": "41"}
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream("GET", PATH, headers=headers) as r:
            lines = r.aiter_lines()
            assert await next_event(lines) == {"id": "42", "data": "first"}
            assert await next_event(lines) == {"id": "43", "data": "second"}
    assert service.seen[0]["headers"][b"last-event-id"] == b"41"


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_goes_away_ends_the_request_to_the_service(gateway, mode: str) -> None:  # type: ignore[no-untyped-def]
    service = Notifications()
    gw = await gateway(mode, service)
    user = gw.issuer.member()
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream("GET", PATH, headers={**user.headers, **EVENT_STREAM}) as r:
            assert await next_event(r.aiter_lines()) == {"id": "1", "data": "first"}
        # Leaving the block mid-stream closes the client's connection.
        await service.gone.wait()
        await service.finished.wait()
        # Nothing of the exchange stays behind in the gateway: the request's task ended too.
        while gw.server.server_state.tasks:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.01)
    assert len(service.seen) == 1


async def test_a_quiet_stream_outlives_the_read_timeout_of_ordinary_requests(gateway) -> None:  # type: ignore[no-untyped-def]
    # A heartbeat every 15 s is far over no ordinary answer's wait; here 0.6 s over 0.3 s.
    service = Notifications(pause=0.6)
    gw = await gateway("distributed", service, upstream_timeout=0.3, upstream_stream_idle_timeout=5)
    user = gw.issuer.member()
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream("GET", PATH, headers={**user.headers, **EVENT_STREAM}) as r:
            lines = r.aiter_lines()
            assert await next_event(lines) == {"id": "1", "data": "first"}
            assert await next_event(lines) == {"id": "2", "data": "second"}
            assert await next_event(lines) is None
    assert not service.gone.is_set()


async def test_a_stream_silent_past_the_idle_limit_is_ended_and_so_is_the_request_to_the_service(
    gateway,  # type: ignore[no-untyped-def]
) -> None:
    service = Notifications()  # never told to go on: silent after the first event
    gw = await gateway("distributed", service, upstream_stream_idle_timeout=0.5)
    user = gw.issuer.member()
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream("GET", PATH, headers={**user.headers, **EVENT_STREAM}) as r:
            lines = r.aiter_lines()
            assert await next_event(lines) == {"id": "1", "data": "first"}
            assert await next_event(lines) is None  # the EventSource reconnects from here
        await service.gone.wait()


async def test_a_browser_stream_may_carry_its_token_in_the_query(gateway) -> None:  # type: ignore[no-untyped-def]
    """EventSource cannot send a header: for an event stream, and only there, the gateway takes
    the token from ``?access_token=`` as it would from the header, passes the query on to the
    service (which checks it again) and never writes the token to its log."""
    service = Notifications()
    service.go_on.set()
    gw = await gateway("distributed", service)
    with logged() as log:
        await _query_tokens(gw, service, log)


@contextmanager
def logged() -> Iterator[io.StringIO]:
    """What the process logs meanwhile, as the gateway's log handler writes it."""
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield handler.stream
    finally:
        root.removeHandler(handler)


async def _query_tokens(gw: Gateway, service: Notifications, log: io.StringIO) -> None:
    user = gw.issuer.member()
    async with asyncio.timeout(PROMPTLY):
        async with gw.client.stream(
            "GET", PATH, params={"access_token": user.token}, headers=EVENT_STREAM
        ) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            assert await next_event(lines) == {"id": "1", "data": "first"}
            assert await next_event(lines) == {"id": "2", "data": "second"}
    assert service.seen[0]["query"] == f"access_token={user.token}".encode()
    assert b"authorization" not in service.seen[0]["headers"]

    secret = "not-a-token-but-a-secret"
    refused = [
        # any other request still needs the header
        await gw.client.get(PATH, params={"access_token": user.token}),
        await gw.client.post(PATH, params={"access_token": user.token}, headers=EVENT_STREAM),
        # a query token is checked like a header's
        await gw.client.get(PATH, params={"access_token": secret}, headers=EVENT_STREAM),
        await gw.client.get(PATH, params={"access_token": ""}, headers=EVENT_STREAM),
        # one token, not a choice of two
        await gw.client.get(
            PATH, params=[("access_token", user.token), ("access_token", secret)], headers=EVENT_STREAM
        ),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [
        (401, "unauthenticated"),
        (401, "unauthenticated"),
        (401, "token_invalid"),
        (401, "unauthenticated"),
        (401, "token_invalid"),
    ]
    assert len(service.seen) == 1  # none of them reached the service
    lines = log.getvalue()
    assert "/api/v1/me/notifications/stream" in lines  # the access lines are there
    assert secret not in lines
    assert user.token not in lines


# The forwarders themselves: each hands an event stream on as it comes and ends the exchange
# when closed.

FORWARDERS = ["aiohttp", "httpx", "in_process"]


@asynccontextmanager
async def forwarder_to(kind: str, service: Notifications, **options: Any) -> AsyncIterator[Forwarder]:
    if kind == "in_process":
        ups = Upstreams.in_process({SERVICE: service})
        try:
            yield ups.forwarders[SERVICE]
        finally:
            await ups.aclose()
        return
    async with served(service) as (url, _):
        forwarder: Forwarder
        if kind == "aiohttp":
            forwarder = AiohttpForwarder(url, timeout=2, connect_timeout=1, **options)
        else:
            forwarder = HttpxForwarder(httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(2, connect=1)))
        try:
            yield forwarder
        finally:
            await forwarder.aclose()


async def first_chunks(stream: Any) -> bytes:
    received = b""
    async for chunk in stream:
        received += chunk
        if received.endswith(b"\n\n"):
            return received
    return received


@pytest.mark.parametrize("kind", FORWARDERS)
async def test_every_forwarder_hands_an_event_stream_on_as_it_comes(kind: str) -> None:
    service = Notifications()
    target = PATH + "?access_token=t"
    async with forwarder_to(kind, service, max_connections=5) as forwarder:
        async with asyncio.timeout(PROMPTLY):
            status, headers, body = await forwarder.forward(
                "GET", target, [(b"accept", b"text/event-stream")], b""
            )
            assert status == 200
            assert isinstance(body, proxy.UpstreamStream)
            assert (b"content-type", b"text/event-stream; charset=utf-8") in headers
            assert await first_chunks(body) == event(1, "first")
            assert not service.finished.is_set()
            await body.aclose()
            await service.gone.wait()
            # An ordinary answer to the same client is still bytes, whole.
            status, _headers, content = await forwarder.forward(
                "GET", "/api/v1/me", [(b"accept", b"text/event-stream")], b""
            )
            assert (status, content) == (200, b'{"ok": true}')
    assert service.seen[0]["query"] == b"access_token=t"


async def test_open_streams_leave_the_ordinary_connections_to_ordinary_requests() -> None:
    """Every open notification stream holds a connection for as long as the user looks: they
    come from a pool of their own, so a service's ordinary requests never wait behind them."""
    service = Notifications()
    async with forwarder_to("aiohttp", service, max_connections=1) as forwarder:
        async with asyncio.timeout(PROMPTLY):
            streams = [
                (await forwarder.forward("GET", PATH, [(b"accept", b"text/event-stream")], b""))[2]
                for _ in range(3)
            ]
            answers = [await forwarder.forward("GET", "/api/v1/me", [], b"") for _ in range(3)]
            assert [a[0] for a in answers] == [200, 200, 200]
            for stream in streams:
                assert isinstance(stream, proxy.UpstreamStream)
                await stream.aclose()
