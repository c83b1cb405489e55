"""The portal calls the API for many browsers from one address: each call carries the
browser's own address (X-Forwarded-For), so the gateway can count each browser by itself."""

from __future__ import annotations

import httpx

from web.client import Api, ApiClient
from web.session import Session


async def test_every_api_call_carries_the_browsers_address() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    client = ApiClient("http://gateway", transport=httpx.MockTransport(answer))
    try:
        await Api(client, Session(), "203.0.113.7").get("/products")
        await Api(client, Session(), "198.51.100.2").get("/products")
    finally:
        await client.aclose()
    assert [r.headers.get("x-forwarded-for") for r in seen] == ["203.0.113.7", "198.51.100.2"]
