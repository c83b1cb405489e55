"""Liveness, readiness (the database; the broker and the consumer shown) and metrics of a
running identity."""

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
        "checks": {"database": True},
        "informational": {"broker": True, "consumer": True, "relay": True, "timers": True},
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


async def test_requests_keep_working_while_the_broker_is_away_and_their_events_wait_in_the_outbox(
    make_identity,
    rabbit,
    events,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 17, section 5: the broker cut off (a TCP proxy between identity and the shared
    broker), identity stays ready, a user registers and certifies their organisation, and
    the certification's event is kept in the outbox; it reaches the bus once the broker is
    back."""
    from urllib.parse import urlsplit, urlunsplit

    from sqlalchemy import text

    from common.testing.api_client import ApiDriver
    from common.testing.bus import wait_until
    from common.testing.proxy import TcpProxy

    from .conftest import Flows

    target = urlsplit(rabbit.url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
        userinfo = target.netloc.rpartition("@")[0]
        through = urlunsplit(target._replace(netloc=f"{userinfo}@127.0.0.1:{proxy.port}"))
        app = await make_identity(amqp_url=through + "?reconnect_interval=0.2", bus_publish_timeout=0.5)
        probe = await events("identity.organization_certified")
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            flows = Flows(client, ApiDriver(client))

            proxy.cut()

            async def broker_down() -> bool:
                return (await client.get("/readyz")).json()["informational"]["broker"] is False

            await wait_until(broker_down, what="identity sees the broker gone")
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"

            _session, org = await flows.certified()  # register, SMS, certify: all answered

            async def waiting() -> int:
                async with app.state.db.session() as s:
                    return int(
                        (
                            await s.execute(
                                text(
                                    "SELECT count(*) FROM outbox WHERE sent_at IS NULL "
                                    "AND event_type = 'identity.organization_certified'"
                                )
                            )
                        ).scalar_one()
                    )

            assert await waiting() == 1  # kept for the broker

            proxy.restore()
            body, _message = await probe.next(within=20)
            assert body["payload"]["org_id"] == org["id"]
            await wait_until(lambda: _none(waiting), within=10, what="the outbox row marked sent")


async def _none(count) -> bool:  # type: ignore[no-untyped-def]
    return await count() == 0
