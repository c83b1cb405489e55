"""The aiohttp forwarder of the proxied requests sends and returns what the httpx client did
(same target, forwarded headers and body upstream; same status, headers and body back), and
fails the same ways."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from gateway.proxy import (
    AiohttpForwarder,
    Body,
    Forwarder,
    Headers,
    HttpxForwarder,
    UpstreamStream,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class Recorder:
    """A raw ASGI app that records what reaches it and answers by path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.connections: set[tuple[str, int]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append(
            {
                "method": scope["method"],
                "raw_path": scope["raw_path"],
                "query": scope["query_string"],
                "headers": list(scope["headers"]),
                "body": body,
            }
        )
        self.connections.add(tuple(scope["client"]))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.answer(scope, send, body)
        finally:
            self.active -= 1

    async def answer(self, scope: dict[str, Any], send: Any, body: bytes) -> None:
        path = scope["path"]
        if path.startswith("/slow"):
            await asyncio.sleep(float(scope["query_string"].decode().split("=")[1]))
        if path == "/chunked":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            for part in (b"one,", b"two,", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/gzip":
            data = gzip.compress(b'{"compressed": true}')
            headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return
        if path == "/nocontent":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/close":
            data = b"bye"
            headers = [(b"connection", b"close"), (b"content-length", b"3")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return
        if path == "/big":
            data = b"x" * 2_000_000
        else:
            data = b'{"echo": %d}' % len(body)
        headers = [
            (b"content-type", b"application/json"),
            (b"x-multi", b"a"),
            (b"x-multi", b"b"),
            (b"x-request-id", b"from-upstream"),
            (b"content-length", str(len(data)).encode()),
        ]
        await send(
            {
                "type": "http.response.start",
                "status": 201 if scope["method"] == "POST" else 200,
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": data if scope["method"] != "HEAD" else b""})


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[tuple[str, Recorder]]:
    app = Recorder()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_keep_alive=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    await task


def client_for(url: str, *, timeout: float = 5, max_connections: int = 10) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(timeout, connect=1), limits=limits)


def pair(
    url: str, *, timeout: float = 5, max_connections: int = 10
) -> tuple[HttpxForwarder, AiohttpForwarder]:
    before = HttpxForwarder(client_for(url, timeout=timeout, max_connections=max_connections))
    after = AiohttpForwarder(url, timeout=timeout, connect_timeout=1, max_connections=max_connections)
    return before, after


FORWARDED = [
    (b"authorization", b"Bearer abc"),
    (b"user-agent", b"curl/8"),
    (b"accept", b"application/json"),
    (b"content-type", b"application/json"),
    (b"x-forwarded-for", b"192.0.2.10"),
    (b"x-request-id", b"req-1"),
]

CASES = [
    ("GET", "/api/v1/me", FORWARDED, b""),
    # Targets come percent-encoded, as gateway.proxy._target makes them.
    ("GET", "/api/v1/me?page=2&q=a%20b", FORWARDED[:2], b""),
    (
        "GET",
        "/api/v1/files/%E4%B8%AD%E6%96%87%20%E5%90%8D.pdf?q=%E4%B8%AD",
        [(b"x-forwarded-for", b"192.0.2.10")],
        b"",
    ),
    ("GET", "/api/v1/other/%2F?x=%zz", FORWARDED, b""),
    ("POST", "/api/v1/auth/register", FORWARDED, b'{"phone": "13800000000"}'),
    ("POST", "/api/v1/auth/logout", FORWARDED, b""),
    ("PUT", "/api/v1/me/password", FORWARDED, b""),
    ("PATCH", "/api/v1/me", FORWARDED, b"{}"),
    ("DELETE", "/api/v1/me/sessions/1", FORWARDED, b""),
    ("HEAD", "/api/v1/me", FORWARDED, b""),
    ("GET", "/chunked", FORWARDED, b""),
    ("GET", "/gzip", FORWARDED, b""),
    ("GET", "/gzip", [*FORWARDED, (b"accept-encoding", b"identity")], b""),
    ("GET", "/nocontent", FORWARDED, b""),
    ("GET", "/big", FORWARDED, b""),
    ("HEAD", "/big", FORWARDED, b""),  # its length is of no body that comes: read whole (none)
    ("GET", "/close", FORWARDED, b""),
]


async def whole(
    forwarder: Forwarder, method: str, url: str, headers: Headers, body: bytes
) -> tuple[int, Headers, bytes, int | None]:
    """The forwarder's answer with its body read whole (a large one comes as a stream, with the
    length it will have) and the exchange closed."""
    status, out, content = await forwarder.forward(method, url, headers, body)
    return (status, out, *(await _read(content)))


async def _read(content: Body) -> tuple[bytes, int | None]:
    if not isinstance(content, UpstreamStream):
        return content, len(content)
    try:
        return b"".join([chunk async for chunk in content]), content.length
    finally:
        await content.aclose()


def _without_date(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k not in (b"date", b"server")]


@pytest.mark.parametrize(("method", "url", "headers", "body"), CASES)
async def test_sends_and_returns_what_httpx_did(
    upstream: tuple[str, Recorder], method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    base, app = upstream
    before, after = pair(base)
    try:
        expected = await whole(before, method, url, list(headers), body)
        got = await whole(after, method, url, list(headers), body)
        # twice: the second answer comes over a reused connection
        again = await whole(after, method, url, list(headers), body)
    finally:
        await before.aclose()
        await after.aclose()
    assert got[0] == expected[0] == again[0]
    assert _without_date(got[1]) == _without_date(expected[1]) == _without_date(again[1])
    assert got[2] == expected[2] == again[2]
    # Sent on with its length: the service's (a large answer streams), or the whole body's.
    assert got[3] == expected[3] == again[3] == len(got[2])
    sent_by_httpx, sent, sent_again = app.seen
    for key in ("method", "raw_path", "query", "body"):
        assert sent[key] == sent_by_httpx[key] == sent_again[key], key
    # Every forwarded header arrives as given; the clients' own defaults (user agent, accepted
    # encodings) differ and do not matter to the services.
    for forwarded in (sent, sent_again):
        assert [h for h in forwarded["headers"] if h in headers] == list(headers)
        assert dict(forwarded["headers"])[b"host"] == dict(sent_by_httpx["headers"])[b"host"]
        assert b"cookie" not in dict(forwarded["headers"])
        if body:
            assert dict(forwarded["headers"])[b"content-length"] == str(len(body)).encode()


async def test_connections_are_reused_and_bounded(upstream: tuple[str, Recorder]) -> None:
    base, app = upstream
    _before, after = pair(base, max_connections=2)
    try:
        results = await asyncio.gather(*(after.forward("GET", "/slow?s=0.05", [], b"") for _ in range(8)))
        assert [r[0] for r in results] == [200] * 8
        assert app.max_active <= 2
        assert len(app.connections) <= 2
        await after.forward("GET", "/api/v1/me", [], b"")
        assert len(app.connections) <= 2
    finally:
        await after.aclose()


async def test_a_connection_the_service_closed_is_not_reused(upstream: tuple[str, Recorder]) -> None:
    base, app = upstream
    _before, after = pair(base)
    try:
        assert (await after.forward("GET", "/api/v1/me", [], b""))[0] == 200
        await asyncio.sleep(1.5)  # the test server drops idle connections after 1 s
        assert (await after.forward("GET", "/api/v1/me", [], b""))[0] == 200
        assert (await after.forward("GET", "/close", [], b""))[2] == b"bye"
        assert (await after.forward("GET", "/api/v1/me", [], b""))[0] == 200
        assert len(app.connections) == 3
    finally:
        await after.aclose()


async def test_a_connection_closed_just_now_is_not_reused() -> None:
    """The service closed the idle connection, the event loop has not processed it yet."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without saying "connection: close"

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before, after = pair(f"http://127.0.0.1:{port}")
    try:
        for forwarder in (before, after):
            assert (await forwarder.forward("GET", "/a", [], b""))[2] == b"ok"
            await asyncio.sleep(0.05)
            for _ in range(3):
                time.sleep(0.05)  # the FIN arrives; nothing runs the event loop meanwhile
                assert (await forwarder.forward("GET", "/b", [], b""))[2] == b"ok"
        assert served == 8
    finally:
        await before.aclose()
        await after.aclose()
        server.close()
        await server.wait_closed()


async def test_a_slow_service_is_a_timeout(upstream: tuple[str, Recorder]) -> None:
    base, _app = upstream
    before, after = pair(base, timeout=0.3)
    try:
        for forwarder in (before, after):
            with pytest.raises(UpstreamTimeout):
                await forwarder.forward("GET", "/slow?s=1", [], b"")
        assert (await after.forward("GET", "/api/v1/me", [], b""))[0] == 200
    finally:
        await before.aclose()
        await after.aclose()


async def test_a_service_that_is_down_is_unavailable() -> None:
    before, after = pair("http://127.0.0.1:9")
    try:
        for forwarder in (before, after):
            with pytest.raises(UpstreamUnavailable) as info:
                await forwarder.forward("GET", "/api/v1/me", [], b"")
            assert "Connect" in info.value.error
    finally:
        await before.aclose()
        await after.aclose()


async def test_a_broken_answer_is_unavailable() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before, after = pair(f"http://127.0.0.1:{port}")
    try:
        for forwarder in (before, after):
            with pytest.raises(UpstreamUnavailable):
                await forwarder.forward("GET", "/api/v1/me", [], b"")
    finally:
        await before.aclose()
        await after.aclose()
        server.close()
        await server.wait_closed()
