"""What the shipped alerts (deploy/monitoring/alerts.yml) read off a service's /metrics (issue 17
§3): timers that failed for good on either transport, the consumer's backlog in RabbitMQ, the
broker link, and the readiness answers (so flaps can be counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest

from common.app import ServiceRuntime, create_service_app
from common.bus.inprocess import InProcessTransport
from common.bus.rabbitmq import RabbitTransport
from common.db import Database
from common.settings import ServiceSettings
from common.testing.bus import CERTIFIED, Ledger, make_schema
from common.testing.rabbit import RabbitNamespace
from common.timers import schedule, utcnow

FreshDb = Callable[[str], Awaitable[str]]


def settings_for(name: str, url: str, **kw: Any) -> ServiceSettings:
    class Settings(ServiceSettings):
        service_name: ClassVar[str] = name

    return Settings(
        environment="development",
        database_url=url,
        outbox_poll_interval=0.05,
        timer_poll_interval=0.05,
        bus_retry_delays=[0.05, 0.1],
        log_json=False,
        **kw,
    )


async def database_for(name: str, fresh_db: FreshDb) -> str:
    url = await fresh_db(name)
    setup = Database(url, pool_size=1)
    await make_schema(setup)
    await setup.dispose()
    return url


def samples(body: str) -> Counter[str]:
    values: Counter[str] = Counter()
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)  # type: ignore[assignment]
    return values


async def scrape(app: Any, *paths: str) -> tuple[Counter[str], list[int]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        statuses = [(await client.get(path)).status_code for path in paths]
        body = (await client.get("/metrics")).text
    return samples(body), statuses


async def test_a_timer_that_failed_for_good_shows_as_a_dead_timer(fresh_db: FreshDb) -> None:
    transport = InProcessTransport()
    await transport.start()
    url = await database_for("deadtimers", fresh_db)
    runtime = ServiceRuntime(settings_for("deadtimers", url), migrations_dir=None, transport=transport)
    app = create_service_app(runtime, title="deadtimers")
    await runtime.prepare()
    try:
        metrics, _ = await scrape(app)
        assert metrics['voucher_timers_dead{service="deadtimers"}'] == 0
        async with runtime.db.transaction() as s:
            await schedule(s, "orders.expire", "o-1", utcnow() - timedelta(seconds=5), state="dead")
        metrics, _ = await scrape(app)
        assert metrics['voucher_timers_dead{service="deadtimers"}'] == 1
        assert metrics['voucher_bus_connected{service="deadtimers"}'] == 1
    finally:
        await runtime.stop()
        await transport.stop()


@pytest.mark.broker
async def test_on_rabbitmq_dead_timers_and_the_consumers_backlog_are_exported(
    fresh_db: FreshDb, rabbit: RabbitNamespace
) -> None:
    url = await database_for("lagging", fresh_db)
    settings = settings_for(
        "lagging", url, amqp_url=rabbit.url, bus_exchange=rabbit.exchange, bus_queue_prefix=rabbit.prefix
    )
    runtime = ServiceRuntime(settings, migrations_dir=None, consumer=Ledger(Database(url, pool_size=1)))
    rabbit.services.append("ledger")
    app = create_service_app(runtime, title="lagging")
    await runtime.prepare()
    try:
        transport = runtime.transport
        assert isinstance(transport, RabbitTransport)
        rabbit.transports.append(transport)
        channel, _queue, _consumer = transport._consumers["ledger"]
        await channel.close()  # the consumer stops taking deliveries: what arrives now waits
        publisher = rabbit.transport(retry_delays=[0.05])
        await publisher.start()
        for i in range(3):
            await publisher.publish({"event_id": f"lag-{i}", "event_type": CERTIFIED, "payload": {}})
        async with runtime.db.transaction() as s:
            await schedule(s, "orders.expire", "o-1", utcnow() - timedelta(seconds=5), state="dead")
        metrics, _ = await scrape(app)
        assert metrics['voucher_consumer_backlog{service="lagging"}'] == 3
        assert metrics['voucher_timers_dead{service="lagging"}'] == 1
        assert metrics['voucher_bus_connected{service="lagging"}'] == 1
    finally:
        await runtime.stop()


async def test_readiness_answers_are_exported_and_every_change_is_counted(fresh_db: FreshDb) -> None:
    transport = InProcessTransport()
    await transport.start()
    url = await database_for("flapping", fresh_db)
    runtime = ServiceRuntime(settings_for("flapping", url), migrations_dir=None, transport=transport)
    app = create_service_app(runtime, title="flapping")
    await runtime.start()
    try:
        metrics, statuses = await scrape(app, "/readyz")
        assert statuses == [200]
        assert metrics['voucher_ready{service="flapping"}'] == 1
        changes = metrics['voucher_readiness_changes_total{service="flapping"}']
        await transport.stop()  # the bus away: not ready (or ready, if readiness ignores it)
        runtime.started = False  # a draining pod: not ready whatever the checks say
        metrics, statuses = await scrape(app, "/readyz", "/readyz")
        assert statuses == [503, 503]
        assert metrics['voucher_ready{service="flapping"}'] == 0
        assert metrics['voucher_readiness_changes_total{service="flapping"}'] == changes + 1
        runtime.started = True
        await transport.start()
        metrics, statuses = await scrape(app, "/readyz")
        assert statuses == [200]
        assert metrics['voucher_ready{service="flapping"}'] == 1
        assert metrics['voucher_readiness_changes_total{service="flapping"}'] == changes + 2
    finally:
        await runtime.stop()
        await transport.stop()
