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


async def test_a_token_issued_before_the_organisation_was_onboarded_is_renewed_once() -> None:
    """The provider approval (or 企业信息认证) came after the token: the API's
    ``provider_required`` makes the client renew the token once and ask again."""
    import time

    calls: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append((request.url.path, request.headers.get("authorization", "")))
        if request.url.path.endswith("/auth/refresh"):
            return httpx.Response(200, json={"access_token": "new", "refresh_token": "r2", "expires_in": 900})
        if request.url.path.endswith("/me"):
            return httpx.Response(200, json={"user": {"role": "owner"}, "organization": None})
        if request.headers.get("authorization") == "Bearer old":
            return httpx.Response(403, json={"code": "provider_required", "detail": "请先成为平台服务机构"})
        return httpx.Response(200, json={"items": []})

    session = Session({"access": "old", "refresh": "r1", "exp": time.time() + 600})
    client = ApiClient("http://gateway", transport=httpx.MockTransport(answer))
    try:
        assert await Api(client, session).get("/me/settlements") == {"items": []}
    finally:
        await client.aclose()
    assert [p for p, _ in calls] == [
        "/api/v1/me/settlements",
        "/api/v1/auth/refresh",
        "/api/v1/me",
        "/api/v1/me/settlements",
    ]
    assert calls[-1][1] == "Bearer new" and session.refresh_token == "r2"
