"""The all-in-one gateway's transport to the services it mounts answers an ordinary request
exactly as httpx.ASGITransport did, and an event stream as it comes (test_streaming.py); an app
that takes no notice of the client leaving is stopped all the same."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.inprocess import ASGIStreamTransport

TRANSPORTS = {"httpx": httpx.ASGITransport, "streaming": ASGIStreamTransport}


def client(kind: str, app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=TRANSPORTS[kind](app=app), base_url="http://svc")


async def answer(send: Any, body: bytes = b"ok", *, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_answer_ends_once_the_app_has_returned(kind: str) -> None:
    """Work after the last send (a background task) is done when the caller has the answer."""
    after: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = await receive()
        await answer(send, request["body"][:2])
        await asyncio.sleep(0.05)
        after.append("background task done")

    async with client(kind, app) as c:
        r = await c.post("/x", content=b"hello")
    assert (r.status_code, r.content, after) == (200, b"he", ["background task done"])


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_an_exception_of_the_app_reaches_the_caller(kind: str) -> None:
    async def before_answering(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("broken before the answer")

    async def after_answering(scope: Any, receive: Any, send: Any) -> None:
        await answer(send, status=500)  # as Starlette's ServerErrorMiddleware does
        raise ValueError("broken after the answer")

    for app in (before_answering, after_answering):
        async with client(kind, app) as c:
            with pytest.raises(ValueError, match="broken"):
                await c.get("/x")


async def test_an_app_that_takes_no_notice_of_the_client_leaving_is_stopped() -> None:
    ended: dict[str, BaseException | None] = {}

    def stream_app(name: str, *, sends: bool) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            try:
                await send({"type": "http.response.start", "status": 200, "headers": []})
                while True:  # never reads receive() again
                    if sends:
                        await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                    await asyncio.sleep(0.01)
            except BaseException as exc:
                ended[name] = exc
                raise

        return app

    for name, sends in (("sending", True), ("silent", False)):
        transport = ASGIStreamTransport(stream_app(name, sends=sends))
        transport.disconnect_grace = 0.2
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            async with asyncio.timeout(2):
                async with c.stream("GET", "/events") as r:
                    assert r.status_code == 200
    # The one that sends fails at its next send, the silent one is cancelled after the grace.
    assert isinstance(ended["sending"], OSError)
    assert isinstance(ended["silent"], asyncio.CancelledError)
