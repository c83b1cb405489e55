"""Liveness, readiness (database + broker + consumer) and metrics of a running identity."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.broker


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": True, "relay": True, "timers": True, "broker": True, "consumer": True},
    }
    await client.get("/api/v1/captcha")
    metrics = (await client.get("/metrics")).text
    assert (
        'voucher_http_requests_total{method="GET",route="/api/v1/captcha",service="identity",status="200"}'
        in metrics
    )


async def test_readiness_fails_when_the_database_is_gone(identity_app, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    from common.db import Database

    runtime = identity_app.state.runtime
    healthy, broken = runtime.db, Database("postgresql://postgres@127.0.0.1:1/none")  # nothing listens there
    runtime.db = broken
    try:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
    finally:
        runtime.db = healthy
        await broken.dispose()
