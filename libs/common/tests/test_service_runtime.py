"""The bus inside a service's runtime: all-in-one start order (issue 5, item 3), retention
(item 10) and what /metrics shows of the bus (item 11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import text

from common.app import ServiceRuntime, create_service_app, start_together
from common.bus import cli
from common.bus.consumer import REDELIVER_TIMER
from common.bus.inprocess import InProcessTransport
from common.bus.outbox import OutboxRelay, emit
from common.bus.retention import RETENTION_TIMER, RetentionSettings, ensure_scheduled, prune
from common.db import Database
from common.settings import ServiceSettings
from common.testing.bus import Ledger, certified, make_schema
from common.timers import schedule, utcnow

FreshDb = Callable[[str], Awaitable[str]]


def settings_for(name: str, url: str) -> ServiceSettings:
    class Settings(ServiceSettings):
        service_name: ClassVar[str] = name

    return Settings(
        environment="development",
        database_url=url,
        bus_transport="inprocess",
        outbox_poll_interval=0.05,
        timer_poll_interval=0.05,
        bus_retry_delays=[0.05, 0.1],
        log_json=False,
    )


async def runtime_for(
    name: str, fresh_db: FreshDb, transport: InProcessTransport, **kw: Any
) -> ServiceRuntime:
    url = await fresh_db(name)
    setup = Database(url, pool_size=1)
    await make_schema(setup)
    await setup.dispose()
    return ServiceRuntime(settings_for(name, url), migrations_dir=None, transport=transport, **kw)


# --- 3. all-in-one: every consumer subscribes before anything publishes -----------------------


async def test_an_event_a_start_hook_publishes_reaches_a_service_started_after_it(fresh_db: FreshDb) -> None:
    transport = InProcessTransport(retry_delays=[0.05])
    await transport.start()
    alpha = await runtime_for("alpha", fresh_db, transport)  # the first service: it publishes
    ledger_db_url = ""
    beta = await runtime_for("ledger", fresh_db, transport, consumer=Ledger(Database("postgresql://x@y/z")))
    ledger_db_url = beta.db.url
    published: list[str] = []

    async def announce(runtime: ServiceRuntime) -> None:
        async with runtime.db.transaction() as s:
            env = await emit(s, certified("first"), aggregate_id="first")
        published.append(env.event_id)
        await runtime.relay.drain()  # at once, before the second service even began

    alpha.on_start.append(announce)
    begun = await start_together([alpha, beta])  # in registry order: alpha first
    try:
        assert begun == [alpha, beta]
        assert beta.consumer is not None
        applied = Database(ledger_db_url, pool_size=1)
        try:
            async with applied.session() as s:
                rows = [r[0] for r in await s.execute(text("SELECT event_id FROM applied"))]
        finally:
            await applied.dispose()
        assert rows == published, "the event of the first service's start hook was lost"
        assert await alpha.relay.pending() == 0
    finally:
        for runtime in reversed(begun):
            await runtime.stop()
        await transport.stop()


# --- 10. retention ----------------------------------------------------------------------------


async def _count(db: Database, sql: str) -> int:
    async with db.session() as s:
        return int((await s.execute(text(sql))).scalar_one())


async def test_retention_prunes_what_is_older_than_its_age_and_nothing_else(fresh_db: FreshDb) -> None:
    db = Database(await fresh_db("ret"), pool_size=2)
    await make_schema(db)
    try:
        transport = InProcessTransport()
        await transport.start()
        ledger = Ledger(db)
        await transport.subscribe(ledger)
        async with db.transaction() as s:
            for i in range(4):
                await emit(s, certified(f"r{i}"), aggregate_id=f"r{i}")
        assert await OutboxRelay(db, transport, listen=False).drain() == 4  # 4 sent, 4 in the inbox
        async with db.transaction() as s:
            await emit(s, certified("pending"), aggregate_id="pending")  # never sent
            await schedule(s, "orders.expire", "dead-old", utcnow(), state="dead")
            await schedule(s, "orders.expire", "dead-new", utcnow(), state="dead")
            await schedule(s, "orders.expire", "alive-old", utcnow() - timedelta(days=400))
            # Age half of everything beyond its retention.
            await s.execute(
                text(
                    "UPDATE outbox SET sent_at = now() - interval '8 days' WHERE id IN "
                    "(SELECT id FROM outbox WHERE sent_at IS NOT NULL ORDER BY id LIMIT 2)"
                )
            )
            await s.execute(
                text("UPDATE outbox SET created_at = now() - interval '100 days' WHERE sent_at IS NULL")
            )
            await s.execute(
                text(
                    "UPDATE inbox SET received_at = now() - interval '31 days' WHERE event_id IN "
                    "(SELECT event_id FROM inbox ORDER BY event_id LIMIT 2)"
                )
            )
            await s.execute(
                text("UPDATE timers SET due_at = now() - interval '91 days' WHERE key = 'dead-old'")
            )

        settings = RetentionSettings()  # 7 / 30 / 90 days
        pruned = await prune(db, settings)
        assert (pruned.outbox, pruned.inbox, pruned.timers) == (2, 2, 1)
        assert await _count(db, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 2
        assert await _count(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 1  # pending: kept
        assert await _count(db, "SELECT count(*) FROM inbox") == 2
        keys = await _keys(db)
        assert keys == ["alive-old", "dead-new"]  # a scheduled timer is never pruned, however old
        again = await prune(db, settings)  # idempotent
        assert (again.outbox, again.inbox, again.timers) == (0, 0, 0)
        await transport.stop()
    finally:
        await db.dispose()


async def _keys(db: Database) -> list[str]:
    async with db.session() as s:
        return sorted(r[0] for r in await s.execute(text("SELECT key FROM timers")))


async def test_the_retention_job_is_a_durable_timer_scheduled_once(fresh_db: FreshDb) -> None:
    transport = InProcessTransport()
    await transport.start()
    runtime = await runtime_for("retain", fresh_db, transport)
    assert RETENTION_TIMER in runtime.timers.handlers
    await runtime.prepare()
    await runtime.begin()
    try:
        await ensure_scheduled(runtime.db)  # a second replica starting: still one job
        async with runtime.db.session() as s:
            rows = (
                await s.execute(text("SELECT key, state FROM timers WHERE kind = :k"), {"k": RETENTION_TIMER})
            ).all()
        assert [tuple(r) for r in rows] == [("all", "scheduled")]
    finally:
        await runtime.stop()
        await transport.stop()


def test_the_inbox_must_outlive_the_replay_window() -> None:
    with pytest.raises(ValueError, match="BUS_INBOX_RETENTION_DAYS must be longer"):
        RetentionSettings(inbox_retention_days=10, replay_window_days=14)


async def test_replaying_a_dead_letter_older_than_the_replay_window_is_refused_with_the_reason(
    fresh_db: FreshDb, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    url = await fresh_db("old")
    db = Database(url, pool_size=2)
    await make_schema(db)
    try:
        old_event = {
            "event_id": "e-old",
            "event_type": "x.y",
            "occurred_at": (utcnow() - timedelta(days=20)).isoformat(),
        }
        new_event = {"event_id": "e-new", "event_type": "x.y", "occurred_at": utcnow().isoformat()}
        async with db.transaction() as s:
            for ev in (old_event, new_event):
                await schedule(
                    s,
                    REDELIVER_TIMER,
                    f"ledger:{ev['event_id']}",
                    utcnow(),
                    {"consumer": "ledger", "event": ev},
                    state="dead",
                    last_error="LedgerBug: x",
                )
        monkeypatch.setenv("LEDGER_DATABASE_URL", url)
        capsys.readouterr()
        status = await asyncio.to_thread(cli.main, ["replay", "--service", "ledger", "--store", "database"])
        out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        assert status == 1
        assert out[-1] == {"replayed": 1}
        (refusal,) = out[:-1]
        assert refusal["reason"].startswith(
            "refused: event e-old occurred 20 days ago, beyond the 14-day replay window"
        )
        async with db.session() as s:
            states = dict((await s.execute(text("SELECT key, state FROM timers"))).all())
        assert states == {"ledger:e-old": "dead", "ledger:e-new": "scheduled"}
    finally:
        await db.dispose()


# --- 11. /metrics shows the bus ---------------------------------------------------------------


async def test_metrics_show_pending_outbox_rows_dead_letters_retries_and_timer_lag(fresh_db: FreshDb) -> None:
    transport = InProcessTransport()
    await transport.start()
    runtime = await runtime_for(
        "observed", fresh_db, transport, consumer=Ledger(Database("postgresql://x@y/z"))
    )
    app = create_service_app(runtime, title="observed")
    await runtime.prepare()  # not begun: nothing publishes the rows below
    try:
        async with runtime.db.transaction() as s:
            for i in range(3):
                await emit(s, certified(f"m{i}"), aggregate_id=f"m{i}")
            await s.execute(text("UPDATE outbox SET created_at = now() - interval '90 seconds'"))
            await schedule(s, "orders.expire", "late", utcnow() - timedelta(seconds=30))
            await schedule(s, REDELIVER_TIMER, "observed:e1", utcnow() + timedelta(seconds=60), {"event": {}})
            await schedule(s, REDELIVER_TIMER, "observed:e2", utcnow(), {"event": {}}, state="dead")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            body = (await client.get("/metrics")).text
            ready = await client.get("/readyz")
        metrics = _samples(body)
        assert metrics['voucher_outbox_pending{service="observed"}'] == 3
        assert metrics['voucher_outbox_oldest_pending_age_seconds{service="observed"}'] >= 89
        assert 29 <= metrics['voucher_timer_lag_seconds{service="observed"}'] < 120
        assert metrics['voucher_dlq_depth{service="observed"}'] == 1
        assert metrics['voucher_retry_depth{queue="database",service="observed"}'] == 1
        assert metrics['voucher_consumer_in_flight{consumer="ledger"}'] == 0
        assert metrics['voucher_consumer_paused{consumer="ledger"}'] == 0
        # prepared, not begun: not ready yet, though the database answers; the rest is shown
        assert ready.status_code == 503 and ready.json() == {
            "status": "not_ready",
            "checks": {"database": True},
            "informational": {"broker": True, "consumer": True, "relay": False, "timers": False},
        }
    finally:
        await runtime.stop()
        await transport.stop()


def _samples(body: str) -> Counter[str]:
    values: Counter[str] = Counter()
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)  # type: ignore[assignment]
    return values


# --- issue 17, section 5: readiness does not take the API down with the broker -----------------


def _via(url: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}"))


async def test_a_broker_outage_leaves_the_service_ready_and_events_wait_in_the_outbox(
    fresh_db: FreshDb, rabbit: Any
) -> None:
    """The broker cut off (a TCP proxy between the service and the shared broker): /readyz
    still answers 200 and names the broker (and the consumer) as down, /metrics says
    voucher_bus_connected 0, a change made meanwhile commits and its event waits in the
    outbox; once the broker is back the event is published and applied. With the database
    away the service is not ready (503)."""
    from urllib.parse import urlsplit

    from common.testing.bus import wait_until
    from common.testing.proxy import TcpProxy

    target = urlsplit(rabbit.url)
    url = await fresh_db("brokerless")
    setup = Database(url, pool_size=1)
    await make_schema(setup)
    await setup.dispose()
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 5672) as proxy:
        settings = settings_for("brokerless", url).model_copy(
            update={
                "bus_transport": "rabbitmq",
                "amqp_url": _via(rabbit.url, proxy.port) + "?reconnect_interval=0.2",
                "bus_exchange": rabbit.exchange,
                "bus_queue_prefix": rabbit.prefix,
                "bus_publish_timeout": 0.5,
            }
        )
        ledger = Ledger(Database("postgresql://x@y/z"))
        runtime = ServiceRuntime(settings, migrations_dir=None, consumer=ledger)
        app = create_service_app(runtime, title="brokerless")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
        ):

            async def ready() -> tuple[int, dict[str, Any]]:
                r = await client.get("/readyz")
                return r.status_code, r.json()

            async def broker_gauge() -> float:
                body = (await client.get("/metrics")).text
                return _samples(body)['voucher_bus_connected{service="brokerless"}']

            assert await ready() == (
                200,
                {
                    "status": "ready",
                    "checks": {"database": True},
                    "informational": {"broker": True, "consumer": True, "relay": True, "timers": True},
                },
            )
            assert await broker_gauge() == 1

            proxy.cut()

            async def broker_down() -> bool:
                return (await ready())[1]["informational"]["broker"] is False

            await wait_until(broker_down, what="/readyz names the broker as down")
            status, body = await ready()
            assert status == 200 and body["status"] == "ready" and body["checks"] == {"database": True}
            assert body["informational"]["consumer"] is False
            assert await broker_gauge() == 0

            async with runtime.db.transaction() as s:  # what a route does: commit, event in the outbox
                env = await emit(s, certified("during"), aggregate_id="during")
            await wait_until(
                lambda: _attempted(runtime.db, env.event_id), what="the relay tried and failed to publish"
            )
            assert await runtime.relay.pending() == 1  # kept, not lost

            proxy.restore()

            async def drained() -> bool:
                return await runtime.relay.pending() == 0

            await wait_until(drained, within=20, what="the outbox drained")

            async def applied() -> bool:
                sql = f"SELECT count(*) FROM applied WHERE event_id = '{env.event_id}'"
                return await _count(runtime.db, sql) == 1

            await wait_until(applied, within=20, what="the event applied after the broker came back")
            assert (await ready())[1]["informational"]["broker"] is True
            assert await broker_gauge() == 1

            healthy, broken = runtime.db, Database("postgresql://postgres@127.0.0.1:1/none")
            runtime.db = broken  # nothing listens there
            try:
                status, body = await ready()
                assert (
                    status == 503 and body["status"] == "not_ready" and body["checks"] == {"database": False}
                )
            finally:
                runtime.db = healthy
                await broken.dispose()


async def _attempted(db: Database, event_id: str) -> bool:
    async with db.session() as s:
        attempts = (
            await s.execute(text("SELECT attempts FROM outbox WHERE id = :id"), {"id": event_id})
        ).scalar_one()
    return attempts > 0
