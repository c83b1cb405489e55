"""What an outside security probe of the gateway found (issue 6, section 2), each as a test
that failed before its fix."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI


async def test_two_hundred_concurrent_requests_at_a_windows_start_keep_the_limit(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """Finding 3: the first requests of a window all wait for one shared read, then each is
    decided and counted without an await in between, so none slips past the limit."""
    app, _client = await make_gateway({}, rate_limit_per_ip=120)
    limiter = app.state.limiter
    now = limiter.window_start() + limiter.window + 0.5  # the first moment of a fresh window
    answers = await asyncio.gather(*(limiter.hit("ip:198.51.100.7", 120, now=now) for _ in range(200)))
    assert sum(a is None for a in answers) == 120
    assert all(a is not None and a >= 1 for a in answers[120:])


async def test_two_hundred_concurrent_clients_through_the_gateway_keep_the_limit(
    identity_app: FastAPI, make_gateway
) -> None:  # type: ignore[no-untyped-def]
    _app, client = await make_gateway({"identity": identity_app}, rate_limit_per_ip=50)
    answers = await asyncio.gather(*(client.get("/api/v1/auth/none") for _ in range(200)))
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) == 150
    assert all(r.json()["code"] == "rate_limited" for r in limited)
