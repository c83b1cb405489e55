"""Uploads and downloads of many megabytes pass through the gateway without it holding them:
a request body goes on to the service as it arrives (with the length the client gave), within
the route's limit (a body without a length is counted as it comes and cut with the same 413
problem, and the service then sees a request that broke off, never a complete one); a large
answer comes back as the service sends it, with its length when the service gave one. In both
modes: the service over HTTP (aiohttp) and in-process (httpx, as the all-in-one launcher).

The gateway's memory is measured with tracemalloc over the whole exchange (client, gateway
and stand-in service share this process): a bound well under the body's size, not a timing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common import registry
from common.testing.tokens import TestIssuer
from gateway.main import create_app
from gateway.proxy import Upstreams

from .conftest import gateway_settings, served

MiB = 1024 * 1024
MODES = ["distributed", "in_process"]
SAFETY = 30.0  # never reached when all goes well
# 20 MiB made of one random MiB: what the client sends or the service answers.
BLOCK = os.urandom(MiB)
SIZE = 20 * MiB
PIECE = 64 * 1024
# The gateway's (and everyone else's) allocations during one exchange stay under this.
MEMORY_BOUND = 8 * MiB

UPLOAD = "/api/v1/admin/designations/import"  # quota's designation import: 50 MiB
FILES = "/api/v1/files"  # identity's uploads: 11 MiB


def pieces(total: int = SIZE) -> Iterator[bytes]:
    for start in range(0, total, PIECE):
        offset = start % MiB
        yield BLOCK[offset : offset + min(PIECE, total - start)]


def digest(total: int = SIZE) -> str:
    h = hashlib.sha256()
    for piece in pieces(total):
        h.update(piece)
    return h.hexdigest()


async def send_pieces(total: int = SIZE) -> AsyncIterator[bytes]:
    for piece in pieces(total):
        yield piece


@dataclass
class Received:
    path: str
    headers: dict[bytes, bytes]
    size: int = 0
    complete: bool = False  # the body ended as the client's did (more_body False)
    broken: bool = False  # the request broke off (http.disconnect) before its end


@dataclass
class Service:
    """A stand-in service (raw ASGI) that counts and hashes a request body without keeping it,
    and answers a download of ``/api/v1/files/<size>`` (``?chunked``: without a length) with
    :func:`pieces` as it makes them (``?hold``: it stops after 2 MiB until its client leaves,
    which it notes in ``left``)."""

    requests: list[Received] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen = Received(scope["path"], dict(scope["headers"]))
        self.requests.append(seen)
        try:
            if scope["method"] == "GET":
                await self._download(scope, receive, send)
                return
            h = hashlib.sha256()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    seen.broken = True
                    return  # nothing applied
                h.update(message.get("body", b""))
                seen.size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    seen.complete = True
                    break
            answer = b'{"size": %d, "sha256": "%s"}' % (seen.size, h.hexdigest().encode())
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
        finally:
            self.done.set()

    async def _download(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        size = int(scope["path"].rsplit("/", 1)[1])
        headers = [(b"content-type", b"application/pdf")]
        if scope["query_string"] != b"chunked":
            headers.append((b"content-length", b"%d" % size))
        while (await receive()).get("more_body"):
            pass  # the (empty) request body
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for number, piece in enumerate(pieces(size)):
            if scope["query_string"] == b"hold" and number * PIECE == 2 * MiB:
                async with asyncio.timeout(SAFETY):
                    if (await receive())["type"] == "http.disconnect":
                        self.left.set()
                        return
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Gateway:
    client: httpx.AsyncClient
    issuer: TestIssuer


@pytest_asyncio.fixture
async def gateway(
    fresh_db: Callable[[str], Awaitable[str]],
) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """A gateway served over real HTTP in front of the stand-in (as quota and identity): over
    HTTP as deployed, or in-process as the all-in-one launcher mounts it."""
    async with AsyncExitStack() as stack:

        async def start(mode: str, service: Service) -> Gateway:
            issuer = TestIssuer()
            database = await fresh_db("gateway")
            if mode == "distributed":
                url, _ = await stack.enter_async_context(served(service))
                settings = gateway_settings(database, quota_url=url, identity_url=url)
                app = create_app(settings, key_set=issuer.keys)
            else:
                ups = Upstreams.in_process({"quota": service, "identity": service})
                app = create_app(gateway_settings(database), upstreams=ups, key_set=issuer.keys)
            await stack.enter_async_context(app.router.lifespan_context(app))
            url, _server = await stack.enter_async_context(served(app))
            client = httpx.AsyncClient(base_url=url, timeout=SAFETY)
            stack.push_async_callback(client.aclose)
            return Gateway(client, issuer)

        yield start


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """The peak of the bytes allocated (and still held) inside the block, in its list."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result.append(peak)


def test_the_routes_used_here_have_the_limits_they_are_chosen_for() -> None:
    assert (registry.body_limit(UPLOAD.removeprefix(registry.API_PREFIX)) or 0) > SIZE
    assert registry.body_limit(FILES.removeprefix(registry.API_PREFIX)) == 11 * MiB


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_20_mib_upload_reaches_the_service_whole_without_the_gateway_holding_it(
    gateway: Callable[..., Awaitable[Gateway]], mode: str, framing: str
) -> None:
    service = Service()
    gw = await gateway(mode, service)
    staff = gw.issuer.staff("administrator")
    headers = {**staff.headers, "content-type": "text/csv"}
    if framing == "length":
        headers["content-length"] = str(SIZE)
    with peak_memory() as peak:
        r = await gw.client.post(UPLOAD, content=send_pieces(), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"size": SIZE, "sha256": digest()}
    (seen,) = service.requests
    assert seen.complete and seen.size == SIZE
    if framing == "length":  # the service learns the length the client gave
        assert seen.headers[b"content-length"] == str(SIZE).encode()
    assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / MiB:.1f} MiB during a {SIZE // MiB} MiB upload"


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_without_a_length_over_the_route_s_limit_is_cut_and_never_reaches_the_service_whole(
    gateway: Callable[..., Awaitable[Gateway]], mode: str
) -> None:
    service = Service()
    gw = await gateway(mode, service)
    user = gw.issuer.member()
    limit = registry.body_limit(FILES.removeprefix(registry.API_PREFIX)) or 0
    r = await gw.client.post(FILES, content=send_pieces(limit + MiB), headers=user.headers)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "payload_too_large"
    # The service got the beginning (the gateway streams) and then the request broke off:
    # it saw no complete body, so it applied nothing.
    async with asyncio.timeout(SAFETY):
        await service.done.wait()
    assert [(s.complete, s.broken) for s in service.requests] == [(False, True)]
    assert all(s.size <= limit for s in service.requests)

    # With its length over the limit: refused before anything reaches the service.
    before = len(service.requests)
    r = await gw.client.post(
        FILES,
        content=send_pieces(limit + 1),
        headers={**user.headers, "content-length": str(limit + 1)},
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert len(service.requests) == before

    # Within the limit, without a length: whole.
    r = await gw.client.post(FILES, content=send_pieces(limit), headers=user.headers)
    assert r.status_code == 200 and r.json() == {"size": limit, "sha256": digest(limit)}


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_20_mib_download_streams_back_identical_and_with_its_length(
    gateway: Callable[..., Awaitable[Gateway]], mode: str, framing: str
) -> None:
    service = Service()
    gw = await gateway(mode, service)
    user = gw.issuer.member()
    path = f"{FILES}/{SIZE}" + ("?chunked" if framing == "chunked" else "")
    h = hashlib.sha256()
    size = 0
    with peak_memory() as peak:
        async with gw.client.stream("GET", path, headers=user.headers) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_raw():
                h.update(chunk)
                size += len(chunk)
    assert size == SIZE and h.hexdigest() == digest()
    if framing == "length":  # sent with its length, as the service gave it
        assert r.headers["content-length"] == str(SIZE)
    else:
        assert "content-length" not in r.headers
    assert r.headers["content-type"] == "application/pdf"
    assert peak[0] < MEMORY_BOUND, f"peak {peak[0] / MiB:.1f} MiB during a {SIZE // MiB} MiB download"


async def test_a_download_the_service_breaks_off_stays_unfinished_for_the_client(
    fresh_db: Callable[[str], Awaitable[str]],
) -> None:
    """Once a large answer has started, the gateway cannot turn it into a 502: the client must
    see the answer break off (short of its length), never a shorter file as if whole."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: %d\r\n\r\n" % SIZE)
        for piece in pieces(2 * MiB):
            writer.write(piece)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    issuer = TestIssuer()
    settings = gateway_settings(await fresh_db("gateway"), identity_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, key_set=issuer.keys)
    try:
        async with app.router.lifespan_context(app), served(app) as (url, _server):
            async with httpx.AsyncClient(base_url=url, timeout=SAFETY) as client:
                received = 0
                with pytest.raises(httpx.RemoteProtocolError):
                    async with client.stream("GET", f"{FILES}/f1", headers=issuer.member().headers) as r:
                        assert r.status_code == 200 and r.headers["content-length"] == str(SIZE)
                        async for chunk in r.aiter_raw():
                            received += len(chunk)
                assert received < SIZE
                # The gateway goes on serving.
                r = await client.get("/api/v1/portal/stats")
                assert r.status_code == 200
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_leaves_mid_download_ends_the_request_to_the_service(
    gateway: Callable[..., Awaitable[Gateway]], mode: str
) -> None:
    service = Service()
    gw = await gateway(mode, service)
    received = 0
    async with gw.client.stream("GET", f"{FILES}/{SIZE}?hold", headers=gw.issuer.member().headers) as r:
        assert r.status_code == 200
        async for chunk in r.aiter_raw():
            received += len(chunk)
            if received >= MiB:
                break  # and leave
    async with asyncio.timeout(SAFETY):
        await service.left.wait()


class Gone(Exception):
    """The test client's upload stops half-way (its connection is dropped)."""


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_leaves_mid_upload_leaves_the_service_with_no_complete_body(
    gateway: Callable[..., Awaitable[Gateway]], mode: str
) -> None:
    service = Service()
    gw = await gateway(mode, service)
    staff = gw.issuer.staff("administrator")

    async def half() -> AsyncIterator[bytes]:
        async for piece in send_pieces(4 * MiB):
            yield piece
        raise Gone

    with pytest.raises(Gone):
        await gw.client.post(UPLOAD, content=half(), headers={**staff.headers, "content-length": str(SIZE)})
    async with asyncio.timeout(SAFETY):
        await service.done.wait()
    assert [(s.complete, s.broken) for s in service.requests] == [(False, True)]
